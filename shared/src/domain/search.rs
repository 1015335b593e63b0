//! The catalog search rules: how text becomes words, what a search may ask, and how results are ranked.
//!
//! The rules, written down once (README and ARCHITECTURE.md point here):
//! - **Words.** Text is lower-cased, common Latin accents are folded (`Café` → `cafe`), and it is split on anything
//!   that is not a letter or a digit. Words are cut to 32 characters, and a trailing `s` is dropped from words of
//!   four or more characters not ending in `ss` (so `lamps` finds `lamp`).
//! - **What a product is found by.** The words of its name, then its category, then its description, at most
//!   [`MAX_INDEX_TOKENS`] distinct ones, each remembered with the first of those fields it appears in. Words of
//!   one character and a few English stop words are not indexed.
//! - **Query words.** The same words, at most [`MAX_QUERY_WORDS`] distinct ones. The last word is a *prefix*
//!   (`wal` finds `walnut`, one letter and up) unless the text ends with a space or a separator; it is kept even
//!   when it is one letter or a stop word, which the other words are not. A query with no word at all lists
//!   the catalog.
//! - **Matching a word.** A product word matches a query word exactly, or as a prefix (last word only), or with
//!   typos: none for words of up to 4 characters, one edit from 5, two from 9 (an edit inserts, deletes or
//!   changes a character, or swaps two neighbours); words with a digit take no typos. A prefix word with typos
//!   matches words that begin with something that close to it (`walnt` finds `walnut`).
//! - **Which products match.** Every query word must match. When no product matches them all, the last word
//!   is dropped, then the one before, until some product matches; the dropped words are reported. The
//!   category and price filters apply on top.
//! - **Ranking** (`sort=relevance`, the default), one rule after the other, each breaking the previous one's
//!   ties: more query words matched (dropped ones included); fewer typos; words found in better fields (name
//!   above category above description); more exact matches (exact above prefix); for the prefix word, the
//!   completion more products hold (`wal` gives `walnut` before `wall` when more products say walnut); then
//!   the product id, so the order is total and pages never repeat or skip.
//! - **Sorting** by `price_asc`, `price_desc` or `newest` replaces the ranking (ties by product id).
//! - **Facets** count the matching products of each category under every condition but the category filter,
//!   so a shopper who picked one category still sees how many the others hold.

use std::collections::BTreeSet;

use crate::domain::product::{Category, Product};

pub mod index;

/// Distinct words indexed per product.
pub const MAX_INDEX_TOKENS: usize = 40;
/// Distinct words kept per search.
pub const MAX_QUERY_WORDS: usize = 8;
/// The longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// The page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// The largest page size.
pub const MAX_PAGE_SIZE: usize = 100;
const MAX_TOKEN_CHARS: usize = 32;
const STOP_WORDS: &[&str] = &["an", "and", "as", "at", "by", "for", "in", "of", "on", "or", "the", "to", "with"];

fn fold(character: char) -> char {
    match character {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ñ' | 'ń' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' => 'u',
        'ý' | 'ÿ' => 'y',
        'ß' => 's',
        'ł' => 'l',
        'ś' | 'š' => 's',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

/// The words of a text, folded, cut and stemmed, in order (repeats included); the flag says whether the text
/// ends inside the last word.
fn words(text: &str) -> (Vec<String>, bool) {
    let folded: String = text.chars().flat_map(char::to_lowercase).map(fold).collect();
    let open_end = folded.chars().last().is_some_and(char::is_alphanumeric);
    let words = folded
        .split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut word: String = word.chars().take(MAX_TOKEN_CHARS).collect();
            if word.chars().count() >= 4 && word.ends_with('s') && !word.ends_with("ss") {
                word.pop();
            }
            word
        })
        .collect();
    (words, open_end)
}

fn indexable(word: &str) -> bool {
    word.chars().count() >= 2 && !STOP_WORDS.contains(&word)
}

/// The field of a product a word was found in; the better field comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// The product's name.
    Name,
    /// Its category slug.
    Category,
    /// Its description.
    Description,
}

/// The distinct words a product is found by, each with the best field it appears in, in the order name,
/// category, description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProductWords(Vec<(String, Field)>);

impl ProductWords {
    /// The words of a product, by the rules above.
    pub fn of(product: &Product) -> Self {
        let mut found = ProductWords::default();
        for (text, field) in
            [(product.name.as_str(), Field::Name), (product.category.as_ref(), Field::Category), (product.description.as_str(), Field::Description)]
        {
            for word in words(text).0 {
                if found.0.len() >= MAX_INDEX_TOKENS {
                    return found;
                }
                if indexable(&word) && !found.0.iter().any(|(known, _)| *known == word) {
                    found.0.push((word, field));
                }
            }
        }
        found
    }

    /// From words and fields already in order (as stored in an index record).
    pub fn from_parts(parts: Vec<(String, Field)>) -> Self {
        Self(parts)
    }

    /// The words with their fields.
    pub fn as_slice(&self) -> &[(String, Field)] {
        &self.0
    }
}

/// One word of a query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueryWord {
    /// The folded, stemmed word.
    pub text: String,
    /// Whether it matches as a prefix (the last word, typed without a space after it).
    pub prefix: bool,
}

impl QueryWord {
    /// The edits a product word may differ by: none up to 4 characters, one from 5, two from 9, and none for
    /// words with a digit.
    pub fn max_typos(&self) -> u8 {
        if self.text.chars().any(|character| character.is_ascii_digit()) {
            return 0;
        }
        match self.text.chars().count() {
            0..=4 => 0,
            5..=8 => 1,
            _ => 2,
        }
    }
}

/// The order of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// By the ranking rules (the default).
    #[default]
    Relevance,
    /// Cheapest first.
    PriceAsc,
    /// Dearest first.
    PriceDesc,
    /// Most recently created first.
    Newest,
}

impl Sort {
    /// The names `sort` accepts.
    pub const NAMES: [&'static str; 4] = ["relevance", "price_asc", "price_desc", "newest"];

    /// The sort a name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "relevance" => Some(Self::Relevance),
            "price_asc" => Some(Self::PriceAsc),
            "price_desc" => Some(Self::PriceDesc),
            "newest" => Some(Self::Newest),
            _ => None,
        }
    }

    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Relevance => "relevance",
            Self::PriceAsc => "price_asc",
            Self::PriceDesc => "price_desc",
            Self::Newest => "newest",
        }
    }
}

/// A validated catalog search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// The query words, in the order typed (empty: list the catalog).
    pub words: Vec<QueryWord>,
    /// Only this category.
    pub category: Option<Category>,
    /// The lowest price, in minor units, inclusive.
    pub min_price: Option<i64>,
    /// The highest price, in minor units, inclusive.
    pub max_price: Option<i64>,
    /// The order of results.
    pub sort: Sort,
    /// The page size, 1 to [`MAX_PAGE_SIZE`].
    pub limit: usize,
}

/// The parts of a search as they arrive, before validation.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchParams<'a> {
    /// `q`.
    pub text: Option<&'a str>,
    /// `category`.
    pub category: Option<&'a str>,
    /// `min_price`.
    pub min_price: Option<i64>,
    /// `max_price`.
    pub max_price: Option<i64>,
    /// `sort`.
    pub sort: Option<&'a str>,
    /// `limit`.
    pub limit: Option<usize>,
}

fn query_words(text: &str) -> Result<Vec<QueryWord>, SearchError> {
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(SearchError::invalid("q", &format!("at most {MAX_QUERY_CHARS} characters")));
    }
    let (all, open_end) = words(text);
    let last = all.len().checked_sub(1);
    let mut kept: Vec<QueryWord> = Vec::new();
    for (position, text) in all.into_iter().enumerate() {
        let prefix = open_end && Some(position) == last;
        if !prefix && !indexable(&text) {
            continue;
        }
        let word = QueryWord { text, prefix };
        if !kept.contains(&word) {
            kept.push(word);
        }
    }
    if kept.len() > MAX_QUERY_WORDS {
        return Err(SearchError::invalid("q", &format!("at most {MAX_QUERY_WORDS} distinct words")));
    }
    Ok(kept)
}

impl SearchRequest {
    /// Validates the parts of a search.
    ///
    /// # Errors
    /// [`SearchError::Invalid`] naming the parameter that breaks a rule.
    pub fn new(params: SearchParams<'_>) -> Result<Self, SearchError> {
        let words = match params.text {
            None => Vec::new(),
            Some(text) => query_words(text)?,
        };
        let category = params
            .category
            .map(Category::parse)
            .transpose()
            .map_err(|_| SearchError::invalid("category", "a category slug such as 'home-office'"))?;
        for (name, price) in [("min_price", params.min_price), ("max_price", params.max_price)] {
            if price.is_some_and(|amount| amount < 0) {
                return Err(SearchError::invalid(name, "not negative"));
            }
        }
        if let (Some(low), Some(high)) = (params.min_price, params.max_price)
            && low > high
        {
            return Err(SearchError::invalid("min_price", "not above max_price"));
        }
        let sort = match params.sort {
            None => Sort::default(),
            Some(name) => Sort::parse(name)
                .ok_or_else(|| SearchError::invalid("sort", &format!("one of {}", Sort::NAMES.join(", "))))?,
        };
        let limit = params.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(SearchError::invalid("limit", &format!("1 to {MAX_PAGE_SIZE}")));
        }
        Ok(Self { words, category, min_price: params.min_price, max_price: params.max_price, sort, limit })
    }

    /// Whether a product's price lies within the bounds.
    pub fn price_fits(&self, amount: i64) -> bool {
        self.min_price.is_none_or(|low| amount >= low) && self.max_price.is_none_or(|high| amount <= high)
    }

    /// A stable fingerprint of everything but the page size, so a cursor can be tied to its search. Word order
    /// counts (it decides which words are dropped first).
    pub fn fingerprint(&self) -> String {
        let words: Vec<String> =
            self.words.iter().map(|word| format!("{}{}", word.text, if word.prefix { "*" } else { "" })).collect();
        format!(
            "q={};c={};min={};max={};sort={}",
            words.join(" "),
            self.category.as_ref().map_or("", AsRef::as_ref),
            self.min_price.map_or(String::new(), |low| low.to_string()),
            self.max_price.map_or(String::new(), |high| high.to_string()),
            self.sort.name(),
        )
    }

    /// The distinct word texts, for logs.
    pub fn word_texts(&self) -> BTreeSet<&str> {
        self.words.iter().map(|word| word.text.as_str()).collect()
    }
}

/// What is wrong with a search.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// A parameter breaks a rule.
    #[error("{param}: {reason}")]
    Invalid {
        /// The query parameter's name.
        param: String,
        /// The rule it breaks.
        reason: String,
    },
}

impl SearchError {
    fn invalid(param: &str, reason: &str) -> Self {
        Self::Invalid { param: param.to_owned(), reason: reason.to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> Vec<(String, bool)> {
        match query_words(text) {
            Ok(words) => words.into_iter().map(|word| (word.text, word.prefix)).collect(),
            Err(error) => panic!("{text}: {error}"),
        }
    }

    fn owned(words: &[(&str, bool)]) -> Vec<(String, bool)> {
        words.iter().map(|(text, prefix)| ((*text).to_owned(), *prefix)).collect()
    }

    #[test]
    fn query_words_are_folded_stemmed_and_the_last_one_is_a_prefix_until_a_space() {
        assert_eq!(typed("The Café LAMPS, for glass-desks"), owned(&[("cafe", false), ("lamp", false), ("glass", false), ("desk", true)]));
        assert_eq!(typed("walnut lamp "), owned(&[("walnut", false), ("lamp", false)]));
        assert_eq!(typed("a"), owned(&[("a", true)]));
        assert_eq!(typed("lamp the"), owned(&[("lamp", false), ("the", true)]));
        assert_eq!(typed("x lamp"), owned(&[("lamp", true)]));
        assert_eq!(typed("!!"), owned(&[]));
        assert_eq!(typed("oak oak"), owned(&[("oak", false), ("oak", true)]));
    }

    #[test]
    fn product_words_keep_the_best_field_and_skip_short_and_stop_words() {
        let price = crate::domain::Money::new(4900, crate::domain::Currency::EUR);
        let fields = crate::domain::NewProduct::new("SKU-1", "Walnut Desk Lamp", "A lamp of walnut, for the desk; warm light", "lighting", price, 5)
            .unwrap_or_else(|error| panic!("{error}"));
        let id = crate::domain::ProductId::parse("p1").unwrap_or_else(|error| panic!("{error}"));
        let product = fields.into_product(id, crate::ports::Timestamp::from_secs(1));
        let words = ProductWords::of(&product);
        let listed: Vec<(&str, Field)> = words.as_slice().iter().map(|(word, field)| (word.as_str(), *field)).collect();
        assert_eq!(
            listed,
            [
                ("walnut", Field::Name),
                ("desk", Field::Name),
                ("lamp", Field::Name),
                ("lighting", Field::Category),
                ("warm", Field::Description),
                ("light", Field::Description),
            ]
        );
    }

    #[test]
    fn typo_budgets_grow_with_the_word() {
        let budget = |text: &str| QueryWord { text: text.to_owned(), prefix: false }.max_typos();
        assert_eq!([budget("lamp"), budget("walnt"), budget("mahogany"), budget("armchairs"), budget("x1000a")], [0, 1, 1, 2, 0]);
    }

    #[test]
    fn search_parameters_are_checked_and_named() {
        let param_of = |params: SearchParams<'_>| match SearchRequest::new(params) {
            Err(SearchError::Invalid { param, .. }) => param,
            Ok(_) => "ok".to_owned(),
        };
        let long = "ab ".repeat(80);
        let many = "a1 b2 c3 d4 e5 f6 g7 h8 i9";
        assert_eq!(param_of(SearchParams { text: Some(&long), ..SearchParams::default() }), "q");
        assert_eq!(param_of(SearchParams { text: Some(many), ..SearchParams::default() }), "q");
        assert_eq!(param_of(SearchParams { category: Some("Not A Slug"), ..SearchParams::default() }), "category");
        assert_eq!(param_of(SearchParams { min_price: Some(-1), ..SearchParams::default() }), "min_price");
        assert_eq!(param_of(SearchParams { min_price: Some(10), max_price: Some(9), ..SearchParams::default() }), "min_price");
        assert_eq!(param_of(SearchParams { sort: Some("cheapest"), ..SearchParams::default() }), "sort");
        assert_eq!(param_of(SearchParams { limit: Some(0), ..SearchParams::default() }), "limit");
        assert_eq!(param_of(SearchParams { limit: Some(MAX_PAGE_SIZE + 1), ..SearchParams::default() }), "limit");
        let fine = SearchParams {
            text: Some("a"),
            category: Some("lighting"),
            min_price: Some(0),
            max_price: Some(0),
            sort: Some("newest"),
            limit: Some(1),
        };
        assert_eq!(param_of(fine), "ok");
    }

    #[test]
    fn the_fingerprint_keeps_word_order_and_sort_but_not_page_size() {
        let print = |text: &str, sort: Option<&str>, limit: usize| {
            SearchRequest::new(SearchParams { text: Some(text), sort, limit: Some(limit), ..SearchParams::default() })
                .map(|request| request.fingerprint())
        };
        assert_eq!(print("oak lamp", None, 5), print("oak lamp", Some("relevance"), 50));
        assert_ne!(print("oak lamp", None, 5), print("lamp oak", None, 5));
        assert_ne!(print("oak lamp", None, 5), print("oak lamp ", None, 5));
        assert_ne!(print("oak lamp", None, 5), print("oak lamp", Some("newest"), 5));
    }
}
