//! The catalog search rules: how text becomes tokens, what a search request may ask, and what matches it.
//!
//! The rules, written down once:
//! - text is lower-cased, common Latin accents are folded (`é` → `e`), and it is split on anything that is not
//!   a letter or a digit;
//! - words shorter than two characters and a few English stop words are dropped, words are cut to 32
//!   characters, and a trailing `s` is dropped from words of four or more characters not ending in `ss`
//!   (so `lamps` finds `lamp`);
//! - a product is indexed under the tokens of its name, then its category, then its description, at most
//!   [`MAX_INDEX_TOKENS`] distinct ones (words past that are not searchable);
//! - a search matches a product when every query token is one of the product's tokens, the category (if
//!   given) is the product's, and the price (if bounded) lies within the inclusive range.

use std::collections::BTreeSet;

use crate::domain::product::{Category, Product};

/// Distinct tokens kept per product (bounded so one product's index writes fit in one transaction).
pub const MAX_INDEX_TOKENS: usize = 40;
/// Query tokens kept per search.
pub const MAX_QUERY_TOKENS: usize = 8;
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

fn normalise_word(word: &str) -> Option<String> {
    let mut token: String = word.chars().take(MAX_TOKEN_CHARS).collect();
    if token.chars().count() < 2 || STOP_WORDS.contains(&token.as_str()) {
        return None;
    }
    if token.len() >= 4 && token.ends_with('s') && !token.ends_with("ss") {
        token.pop();
    }
    Some(token)
}

/// The distinct tokens of a text, in order of first appearance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tokens(Vec<String>);

impl Tokens {
    /// Tokenises text by the rules above.
    pub fn of(text: &str) -> Self {
        let mut tokens = Tokens::default();
        tokens.extend_from(text, usize::MAX);
        tokens
    }

    /// The tokens a product is indexed under.
    pub fn of_product(product: &Product) -> Self {
        let mut tokens = Tokens::default();
        tokens.extend_from(&product.name, MAX_INDEX_TOKENS);
        tokens.extend_from(product.category.as_ref(), MAX_INDEX_TOKENS);
        tokens.extend_from(&product.description, MAX_INDEX_TOKENS);
        tokens
    }

    fn extend_from(&mut self, text: &str, cap: usize) {
        let folded: String = text.chars().flat_map(char::to_lowercase).map(fold).collect();
        for word in folded.split(|character: char| !character.is_alphanumeric()) {
            if self.0.len() >= cap {
                return;
            }
            if let Some(token) = normalise_word(word)
                && !self.0.contains(&token) {
                    self.0.push(token);
                }
        }
    }

    /// The tokens.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every token of `self` is among `others`.
    pub fn all_in(&self, others: &[String]) -> bool {
        self.0.iter().all(|token| others.contains(token))
    }
}

/// A validated catalog search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// Tokens that must all match (empty: no text condition).
    pub tokens: Tokens,
    /// Only this category.
    pub category: Option<Category>,
    /// The lowest price, in minor units, inclusive.
    pub min_price: Option<i64>,
    /// The highest price, in minor units, inclusive.
    pub max_price: Option<i64>,
    /// The page size, 1 to [`MAX_PAGE_SIZE`].
    pub limit: usize,
}

/// Which stored list a search walks (the repository maps each to a partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchSource {
    /// Products indexed under this token.
    Token(String),
    /// Products of this category.
    Category(Category),
    /// Every product.
    Catalog,
}

impl SearchRequest {
    /// Validates the parts of a search.
    ///
    /// # Errors
    /// [`SearchError::Invalid`] naming the parameter that breaks a rule.
    pub fn new(
        text: Option<&str>,
        category: Option<&str>,
        min_price: Option<i64>,
        max_price: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Self, SearchError> {
        let tokens = match text.map(str::trim) {
            None | Some("") => Tokens::default(),
            Some(text) if text.chars().count() > MAX_QUERY_CHARS => {
                return Err(SearchError::invalid("q", &format!("at most {MAX_QUERY_CHARS} characters")));
            }
            Some(text) => {
                let tokens = Tokens::of(text);
                if tokens.is_empty() {
                    return Err(SearchError::invalid("q", "has no searchable word (two or more letters or digits)"));
                }
                if tokens.0.len() > MAX_QUERY_TOKENS {
                    return Err(SearchError::invalid("q", &format!("at most {MAX_QUERY_TOKENS} distinct words")));
                }
                tokens
            }
        };
        let category = category
            .map(Category::parse)
            .transpose()
            .map_err(|_| SearchError::invalid("category", "a category slug such as 'home-office'"))?;
        for (name, price) in [("min_price", min_price), ("max_price", max_price)] {
            if price.is_some_and(|amount| amount < 0) {
                return Err(SearchError::invalid(name, "not negative"));
            }
        }
        if let (Some(low), Some(high)) = (min_price, max_price)
            && low > high {
                return Err(SearchError::invalid("min_price", "not above max_price"));
            }
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(SearchError::invalid("limit", &format!("1 to {MAX_PAGE_SIZE}")));
        }
        Ok(Self { tokens, category, min_price, max_price, limit })
    }

    /// The list to walk: the longest query token's (long words are rarer), else the category's, else the
    /// whole catalog.
    pub fn source(&self) -> SearchSource {
        if let Some(token) = self.tokens.as_slice().iter().max_by_key(|token| token.len()) {
            SearchSource::Token(token.clone())
        } else if let Some(category) = &self.category {
            SearchSource::Category(category.clone())
        } else {
            SearchSource::Catalog
        }
    }

    /// Whether a product with these index tokens matches.
    pub fn matches(&self, product: &Product, product_tokens: &[String]) -> bool {
        self.tokens.all_in(product_tokens)
            && self.category.as_ref().is_none_or(|category| *category == product.category)
            && self.min_price.is_none_or(|low| product.price.amount >= low)
            && self.max_price.is_none_or(|high| product.price.amount <= high)
    }

    /// A stable fingerprint of everything but the page size, so a cursor can be tied to its search.
    pub fn fingerprint(&self) -> String {
        let mut sorted: BTreeSet<&str> = BTreeSet::new();
        sorted.extend(self.tokens.as_slice().iter().map(String::as_str));
        format!(
            "q={};c={};min={};max={}",
            sorted.into_iter().collect::<Vec<_>>().join(" "),
            self.category.as_ref().map_or("", AsRef::as_ref),
            self.min_price.map_or(String::new(), |low| low.to_string()),
            self.max_price.map_or(String::new(), |high| high.to_string()),
        )
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

    fn words(tokens: &Tokens) -> Vec<&str> {
        tokens.as_slice().iter().map(String::as_str).collect()
    }

    #[test]
    fn tokens_are_folded_lower_case_words_without_stop_words_or_plurals() {
        assert_eq!(words(&Tokens::of("The Café LAMPS, for glass-desks!")), ["cafe", "lamp", "glass", "desk"]);
        assert_eq!(words(&Tokens::of("a I x 42 42")), ["42"]);
    }

    #[test]
    fn a_search_needs_every_word() {
        let request = SearchRequest::new(Some("oak lamp"), None, None, None, None);
        let request = request.unwrap_or_else(|error| panic!("{error}"));
        let product_tokens = |text: &str| Tokens::of(text).0;
        assert!(request.tokens.all_in(&product_tokens("small oak desk lamp")));
        assert!(!request.tokens.all_in(&product_tokens("small pine desk lamp")));
        assert_eq!(request.source(), SearchSource::Token("lamp".to_owned()));
    }

    #[test]
    fn search_parameters_are_checked_and_named() {
        let param_of = |result: Result<SearchRequest, SearchError>| match result {
            Err(SearchError::Invalid { param, .. }) => param,
            Ok(_) => "ok".to_owned(),
        };
        assert_eq!(param_of(SearchRequest::new(Some("!!"), None, None, None, None)), "q");
        assert_eq!(param_of(SearchRequest::new(Some(&"ab ".repeat(80)), None, None, None, None)), "q");
        assert_eq!(param_of(SearchRequest::new(Some("a1 b2 c3 d4 e5 f6 g7 h8 i9"), None, None, None, None)), "q");
        assert_eq!(param_of(SearchRequest::new(None, Some("Not A Slug"), None, None, None)), "category");
        assert_eq!(param_of(SearchRequest::new(None, None, Some(-1), None, None)), "min_price");
        assert_eq!(param_of(SearchRequest::new(None, None, Some(10), Some(9), None)), "min_price");
        assert_eq!(param_of(SearchRequest::new(None, None, None, None, Some(0))), "limit");
        assert_eq!(param_of(SearchRequest::new(None, None, None, None, Some(MAX_PAGE_SIZE + 1))), "limit");
        assert_eq!(param_of(SearchRequest::new(Some("  "), Some("lighting"), Some(0), Some(0), Some(1))), "ok");
    }

    #[test]
    fn the_fingerprint_ignores_word_order_and_page_size() {
        let first = SearchRequest::new(Some("oak lamp"), None, None, None, Some(5));
        let second = SearchRequest::new(Some("lamp oak"), None, None, None, Some(50));
        let other = SearchRequest::new(Some("lamp"), None, None, None, Some(5));
        let print = |request: Result<SearchRequest, SearchError>| request.map(|r| r.fingerprint());
        assert_eq!(print(first.clone()), print(second));
        assert_ne!(print(first), print(other));
    }
}
