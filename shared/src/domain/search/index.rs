//! The search index: what a search needs of every product (its words and fields, price, category and creation
//! time), held in memory and evaluated against a [`SearchRequest`] by the rules of [`super`].
//!
//! Pure: it is built from [`Record`]s and answers with product ids; the catalog stores the records and reads
//! the products of a page. Typo matching runs a Levenshtein automaton (the `levenshtein_automata` crate, as
//! Tantivy does) over the index's vocabulary, which is small next to the catalog (a few thousand words).

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use levenshtein_automata::{Distance, LevenshteinAutomatonBuilder};
use serde::{Deserialize, Serialize};

use super::{Field, ProductWords, QueryWord, SearchRequest, Sort};
use crate::domain::product::{Category, Product, ProductId};

/// What the index keeps of one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "StoredRecord", try_from = "StoredRecord")]
pub struct Record {
    /// The product.
    pub id: ProductId,
    /// Its unit price, in minor units.
    pub price: i64,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Its category.
    pub category: Category,
    /// The words it is found by.
    pub words: ProductWords,
}

impl Record {
    /// The record of a product.
    pub fn of(product: &Product) -> Self {
        Self {
            id: product.id.clone(),
            price: product.price.amount,
            created_at: product.created_at.as_millis(),
            category: product.category.clone(),
            words: ProductWords::of(product),
        }
    }
}

/// A record as stored: one JSON array `[id, price, created_at, category, name words, category words,
/// description words]`, each group of words one space-separated string (about a third of the size of objects).
#[derive(Serialize, Deserialize)]
struct StoredRecord(String, i64, i64, String, String, String, String);

impl From<Record> for StoredRecord {
    fn from(record: Record) -> Self {
        let group = |wanted: Field| {
            let words: Vec<&str> = record
                .words
                .as_slice()
                .iter()
                .filter(|(_, field)| *field == wanted)
                .map(|(word, _)| word.as_str())
                .collect();
            words.join(" ")
        };
        let (name, category, description) = (group(Field::Name), group(Field::Category), group(Field::Description));
        StoredRecord(record.id.into(), record.price, record.created_at, record.category.into(), name, category, description)
    }
}

impl TryFrom<StoredRecord> for Record {
    type Error = String;

    fn try_from(stored: StoredRecord) -> Result<Self, Self::Error> {
        let StoredRecord(id, price, created_at, category, name, category_words, description) = stored;
        let id = ProductId::parse(&id).map_err(|error| format!("record id: {error}"))?;
        let category = Category::parse(&category).map_err(|error| format!("record category: {error}"))?;
        let mut words = Vec::new();
        for (group, field) in [(name, Field::Name), (category_words, Field::Category), (description, Field::Description)] {
            words.extend(group.split(' ').filter(|word| !word.is_empty()).map(|word| (word.to_owned(), field)));
        }
        Ok(Self { id, price, created_at, category, words: ProductWords::from_parts(words) })
    }
}

/// How one product word matched one query word; the better match orders first (fewer typos, then the better
/// field, then exact before prefix, then the more common completion of a prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct WordMatch {
    typos: u8,
    field: Field,
    prefix: bool,
    /// For a prefix match, the completion's rank among the prefix's completions by the number of products
    /// holding it (0: the most common); 0 otherwise.
    completion: u32,
}

/// A result's place in the order of a search: compared part by part, then by id, so the order is total.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RankKey {
    parts: [i64; 5],
    id: ProductId,
}

impl RankKey {
    /// The text form, for cursors.
    pub fn encode(&self) -> String {
        let [a, b, c, d, e] = self.parts;
        format!("{a}.{b}.{c}.{d}.{e}.{}", self.id)
    }

    /// Reads [`RankKey::encode`]'s text; `None` when it is not one.
    pub fn decode(text: &str) -> Option<Self> {
        let mut pieces = text.split('.');
        let mut parts = [0_i64; 5];
        for part in &mut parts {
            *part = pieces.next()?.parse().ok()?;
        }
        let id = ProductId::parse(pieces.next()?).ok()?;
        if pieces.next().is_some() {
            return None;
        }
        Some(Self { parts, id })
    }
}

/// One page of a search's results, as ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hits {
    /// The page, in order.
    pub ids: Vec<ProductId>,
    /// Where the next page starts; `None` when this page is the last.
    pub next: Option<RankKey>,
    /// How many products match, over all pages.
    pub total: usize,
    /// Matching products per category, under every condition but the category filter; categories with none
    /// are left out.
    pub facets: BTreeMap<String, usize>,
    /// Query words dropped because no product matched them all (see the module rules), in query order.
    pub ignored_words: Vec<String>,
}

fn typo_builder(max_typos: u8) -> &'static LevenshteinAutomatonBuilder {
    static ONE: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    static TWO: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    let cell = if max_typos <= 1 { &ONE } else { &TWO };
    cell.get_or_init(|| LevenshteinAutomatonBuilder::new(max_typos.clamp(1, 2), true))
}

/// Every product's searchable facts, with an inverted index from each word to the products it is found in.
#[derive(Debug, Clone, Default)]
pub struct SearchIndex {
    /// Products in ascending id order; the other per-product vectors follow it.
    ids: Vec<ProductId>,
    prices: Vec<i64>,
    created: Vec<i64>,
    categories: Vec<usize>,
    category_names: Vec<Category>,
    /// Distinct words in ascending byte order, and the products each is found in, with the field.
    vocabulary: Vec<String>,
    postings: Vec<Vec<(u32, Field)>>,
}

impl SearchIndex {
    /// The index of these records (a repeated id keeps its last record).
    pub fn build(records: impl IntoIterator<Item = Record>) -> Self {
        let mut by_id: BTreeMap<ProductId, Record> = BTreeMap::new();
        for record in records {
            by_id.insert(record.id.clone(), record);
        }
        let mut index = SearchIndex::default();
        let mut category_of: HashMap<Category, usize> = HashMap::new();
        let mut postings: HashMap<String, Vec<(u32, Field)>> = HashMap::new();
        for (position, record) in by_id.into_values().enumerate() {
            let Ok(position) = u32::try_from(position) else { break };
            let next_category = category_of.len();
            let category = *category_of.entry(record.category.clone()).or_insert(next_category);
            if category == index.category_names.len() {
                index.category_names.push(record.category.clone());
            }
            for (word, field) in record.words.as_slice() {
                postings.entry(word.clone()).or_default().push((position, *field));
            }
            index.ids.push(record.id);
            index.prices.push(record.price);
            index.created.push(record.created_at);
            index.categories.push(category);
        }
        let mut terms: Vec<(String, Vec<(u32, Field)>)> = postings.into_iter().collect();
        terms.sort_unstable_by(|left, right| left.0.cmp(&right.0));
        (index.vocabulary, index.postings) = terms.into_iter().unzip();
        index
    }

    /// How many products it holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// How many distinct words it holds.
    pub fn vocabulary_len(&self) -> usize {
        self.vocabulary.len()
    }

    /// How each product matches one query word (`None`: it does not).
    fn word_matches(&self, word: &QueryWord) -> Vec<Option<WordMatch>> {
        // The vocabulary words that match, with their typos and whether they matched as a prefix.
        let mut terms: Vec<(usize, u8, bool)> = Vec::new();
        let mut record = |term: usize, typos: u8, prefix: bool| terms.push((term, typos, prefix));
        let max_typos = word.max_typos();
        let start = self.vocabulary.partition_point(|term| term.as_str() < word.text.as_str());
        if max_typos == 0 {
            for (offset, term) in self.vocabulary[start..].iter().enumerate() {
                if *term == word.text {
                    record(start + offset, 0, false);
                } else if word.prefix && term.starts_with(&word.text) {
                    record(start + offset, 0, true);
                } else {
                    break;
                }
            }
            return self.spread(terms);
        }
        let builder = typo_builder(max_typos);
        let automaton = if word.prefix { builder.build_prefix_dfa(&word.text) } else { builder.build_dfa(&word.text) };
        let length = word.text.chars().count();
        let max = usize::from(max_typos);
        for (term_index, term) in self.vocabulary.iter().enumerate() {
            let term_length = term.chars().count();
            if term_length + max < length || (!word.prefix && term_length > length + max) {
                continue;
            }
            if *term == word.text {
                record(term_index, 0, false);
            } else if word.prefix && term.starts_with(&word.text) {
                record(term_index, 0, true);
            } else if let Distance::Exact(typos) = automaton.eval(term)
                && typos > 0
                && typos <= max_typos
            {
                record(term_index, typos, word.prefix);
            }
        }
        self.spread(terms)
    }

    /// Each product's best match among the matching vocabulary words. A prefix's completions are ranked by
    /// how many products hold them, so `wal` stands first for the catalog's `walnut`, then for its `wall`.
    fn spread(&self, mut terms: Vec<(usize, u8, bool)>) -> Vec<Option<WordMatch>> {
        terms.sort_by_key(|&(term, typos, prefix)| (typos, prefix, std::cmp::Reverse(self.postings[term].len()), term));
        let mut matches: Vec<Option<WordMatch>> = vec![None; self.ids.len()];
        let mut completion = 0_u32;
        for (term, typos, prefix) in terms {
            let rank = if prefix && typos == 0 {
                completion += 1;
                completion - 1
            } else {
                0
            };
            for &(product, field) in &self.postings[term] {
                let found = WordMatch { typos, field, prefix, completion: rank };
                let slot = &mut matches[product as usize];
                if slot.is_none_or(|known| found < known) {
                    *slot = Some(found);
                }
            }
        }
        matches
    }

    fn rank_key(&self, product: usize, sort: Sort, per_word: &[Vec<Option<WordMatch>>]) -> RankKey {
        let parts = match sort {
            Sort::Relevance => {
                let (mut matched, mut typos, mut fields, mut prefixes, mut completions) = (0_i64, 0_i64, 0_i64, 0_i64, 0_i64);
                for found in per_word.iter().filter_map(|matches| matches[product]) {
                    matched += 1;
                    typos += i64::from(found.typos);
                    fields += found.field as i64;
                    prefixes += i64::from(found.prefix);
                    completions += i64::from(found.completion);
                }
                [-matched, typos, fields, prefixes, completions]
            }
            Sort::PriceAsc => [self.prices[product], 0, 0, 0, 0],
            Sort::PriceDesc => [self.prices[product].saturating_neg(), 0, 0, 0, 0],
            Sort::Newest => [self.created[product].saturating_neg(), 0, 0, 0, 0],
        };
        RankKey { parts, id: self.ids[product].clone() }
    }

    /// One page of a search's results, resuming after `after` (a key from a previous page of the same search).
    pub fn search(&self, request: &SearchRequest, after: Option<&RankKey>) -> Hits {
        let per_word: Vec<Vec<Option<WordMatch>>> = request.words.iter().map(|word| self.word_matches(word)).collect();
        let category = request
            .category
            .as_ref()
            .map(|wanted| self.category_names.iter().position(|name| name == wanted));
        let in_category = |product: usize| match category {
            None => true,
            Some(None) => false,
            Some(Some(wanted)) => self.categories[product] == wanted,
        };
        let price_fits = |product: usize| request.price_fits(self.prices[product]);
        let matches_first = |product: usize, count: usize| per_word[..count].iter().all(|matches| matches[product].is_some());
        // The words every result must match: all of them, or as many leading ones as some product matches.
        let mut required = per_word.len();
        while required > 0
            && !(0..self.ids.len()).any(|product| in_category(product) && price_fits(product) && matches_first(product, required))
        {
            required -= 1;
        }
        let nothing_matches = !per_word.is_empty() && required == 0;
        let base = |product: usize| !nothing_matches && price_fits(product) && matches_first(product, required);
        let mut hits = Hits::default();
        if !nothing_matches {
            hits.ignored_words = request.words[required..].iter().map(|word| word.text.clone()).collect();
        }
        let mut candidates = Vec::new();
        for product in (0..self.ids.len()).filter(|&product| base(product)) {
            *hits.facets.entry(self.category_names[self.categories[product]].to_string()).or_default() += 1;
            if in_category(product) {
                candidates.push(product);
            }
        }
        hits.total = candidates.len();
        let mut keys: Vec<RankKey> = candidates
            .into_iter()
            .map(|product| self.rank_key(product, request.sort, &per_word))
            .filter(|key| after.is_none_or(|after| key > after))
            .collect();
        if keys.len() > request.limit {
            keys.select_nth_unstable(request.limit);
            keys.truncate(request.limit);
            keys.sort_unstable();
            hits.next = keys.last().cloned();
        } else {
            keys.sort_unstable();
        }
        hits.ids = keys.into_iter().map(|key| key.id).collect();
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::SearchParams;
    use crate::domain::{Currency, Money, NewProduct};
    use crate::ports::Timestamp;

    fn record(id: &str, name: &str, description: &str, category: &str, price: i64, created_secs: i64) -> Record {
        let fields = NewProduct::new(&format!("SKU-{id}"), name, description, category, Money::new(price, Currency::EUR), 1)
            .unwrap_or_else(|error| panic!("{error}"));
        let id = ProductId::parse(id).unwrap_or_else(|error| panic!("{error}"));
        Record::of(&fields.into_product(id, Timestamp::from_secs(created_secs)))
    }

    fn catalog() -> SearchIndex {
        SearchIndex::build([
            record("p1", "Walnut Desk Lamp", "Warm light for a desk.", "lighting", 8900, 1),
            record("p2", "Oak Side Table", "A table with a walnut inlay.", "living-room", 12000, 2),
            record("p3", "Café Chair", "Bistro chair.", "kitchen", 4500, 3),
            record("p4", "Walnut Floor Lamp", "Tall lamp.", "lighting", 15900, 4),
            record("p5", "Brass Lamp", "Polished.", "lighting", 6900, 5),
            record("p6", "Wall Clock", "Round.", "living-room", 3900, 6),
        ])
    }

    fn search(index: &SearchIndex, text: &str, sort: Option<&str>, category: Option<&str>) -> Hits {
        let params = SearchParams { text: Some(text), sort, category, ..SearchParams::default() };
        let request = SearchRequest::new(params).unwrap_or_else(|error| panic!("{error}"));
        index.search(&request, None)
    }

    fn ids(hits: &Hits) -> Vec<&str> {
        hits.ids.iter().map(AsRef::as_ref).collect()
    }

    #[test]
    fn a_prefix_finds_words_that_begin_with_it_and_names_rank_first() {
        let index = catalog();
        // p1 and p4 have walnut in the name, p2 only in its description; `wal` also begins `wall` (p6), which
        // fewer products hold than `walnut`.
        assert_eq!(ids(&search(&index, "wal", None, None)), ["p1", "p4", "p6", "p2"]);
        assert_eq!(ids(&search(&index, "c", None, None)), ["p3", "p6"]);
        assert_eq!(ids(&search(&index, "walnut ", None, None)), ["p1", "p4", "p2"]);
    }

    #[test]
    fn typos_are_forgiven_by_length_and_rank_below_exact_matches() {
        let index = catalog();
        assert_eq!(ids(&search(&index, "walnt lamp", None, None)), ["p1", "p4"]);
        // Four letters take no typo: `lamb` is not `lamp`.
        assert!(search(&index, "lamb ", None, None).ids.is_empty());
        // `walnut` (exact in p1, p4, p2) and `walnuts` stemmed; `wolnut` is one edit from it.
        assert_eq!(ids(&search(&index, "wolnut ", None, None)), ["p1", "p4", "p2"]);
    }

    #[test]
    fn accents_are_folded_and_a_single_letter_is_a_prefix() {
        let index = catalog();
        assert_eq!(ids(&search(&index, "cafe", None, None)), ["p3"]);
        assert_eq!(ids(&search(&index, "CAFÉ", None, None)), ["p3"]);
        assert_eq!(ids(&search(&index, "c", None, None)), ["p3", "p6"]);
    }

    #[test]
    fn words_no_product_has_together_are_dropped_from_the_end_and_reported() {
        let index = catalog();
        let hits = search(&index, "brass zeppelin ", None, None);
        assert_eq!(ids(&hits), ["p5"]);
        assert_eq!(hits.ignored_words, ["zeppelin"]);
        let hits = search(&index, "zeppelin brass ", None, None);
        assert!(hits.ids.is_empty() && hits.ignored_words.is_empty() && hits.total == 0);
    }

    #[test]
    fn more_matched_words_rank_higher_among_results_of_dropped_words() {
        let index = catalog();
        // No product is a walnut lamp clock: `clock` is dropped; walnut lamps match two words, p2 one.
        let hits = search(&index, "walnut lamp clock ", None, None);
        assert_eq!(hits.ignored_words, ["clock"]);
        assert_eq!(ids(&hits), ["p1", "p4"]);
        let hits = search(&index, "walnut clock lamp ", None, None);
        assert_eq!(hits.ignored_words, ["clock", "lamp"]);
        assert_eq!(ids(&hits), ["p1", "p4", "p2"]);
    }

    #[test]
    fn facets_ignore_the_category_filter_and_sorts_replace_the_ranking() {
        let index = catalog();
        let hits = search(&index, "walnut ", None, Some("lighting"));
        assert_eq!(ids(&hits), ["p1", "p4"]);
        assert_eq!(hits.total, 2);
        let facets: Vec<(&str, usize)> = hits.facets.iter().map(|(name, count)| (name.as_str(), *count)).collect();
        assert_eq!(facets, [("lighting", 2), ("living-room", 1)]);
        assert_eq!(ids(&search(&index, "", Some("price_asc"), None)), ["p6", "p3", "p5", "p1", "p2", "p4"]);
        assert_eq!(ids(&search(&index, "lamp", Some("price_desc"), None)), ["p4", "p1", "p5"]);
        assert_eq!(ids(&search(&index, "", Some("newest"), Some("lighting"))), ["p5", "p4", "p1"]);
    }

    #[test]
    fn pages_resume_after_their_key_without_repeats_or_gaps() {
        let index = catalog();
        let params = SearchParams { sort: Some("price_asc"), limit: Some(4), ..SearchParams::default() };
        let request = SearchRequest::new(params).unwrap_or_else(|error| panic!("{error}"));
        let first = index.search(&request, None);
        assert_eq!(ids(&first), ["p6", "p3", "p5", "p1"]);
        let next = first.next.clone().unwrap_or_else(|| panic!("a second page"));
        let key = RankKey::decode(&next.encode()).unwrap_or_else(|| panic!("the key reads back"));
        assert_eq!(key, next);
        let second = index.search(&request, Some(&key));
        assert_eq!(ids(&second), ["p2", "p4"]);
        assert!(second.next.is_none());
        assert_eq!(RankKey::decode("1.2.3.4.p1"), None);
        assert_eq!(RankKey::decode("1.2.3.4.5.p1.x"), None);
    }

    #[test]
    fn records_survive_their_stored_form() {
        let original = record("p9", "Café Lamp", "Soft glow, café style.", "lighting", 100, 9);
        let text = serde_json::to_string(&original).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(text, r#"["p9",100,9000,"lighting","cafe lamp","lighting","soft glow style"]"#);
        let back: Record = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(back, original);
    }
}
