//! The demo catalog: a deterministic list of products over several categories, for the local host's first
//! start and for the end-to-end scenarios. Pure data generation; the host writes it through `Catalog`.

use crate::domain::money::{Currency, Money};
use crate::domain::product::{NewProduct, ProductError};

const CATEGORIES: &[(&str, &[&str])] = &[
    ("lighting", &["Desk Lamp", "Floor Lamp", "Pendant Light", "Wall Sconce", "Reading Light"]),
    ("furniture", &["Armchair", "Bookshelf", "Coffee Table", "Dining Chair", "Sideboard"]),
    ("kitchen", &["Chef Knife", "Cutting Board", "Espresso Cup", "Saucepan", "Teapot"]),
    ("textiles", &["Throw Blanket", "Cushion Cover", "Linen Napkin", "Rug", "Bath Towel"]),
    ("home-office", &["Notebook", "Pen Holder", "Monitor Stand", "Desk Organizer", "Letter Tray"]),
    ("garden", &["Planter", "Watering Can", "Garden Bench", "Bird Feeder", "Lantern"]),
];
const MATERIALS: &[&str] = &["Oak", "Walnut", "Brass", "Ceramic", "Linen", "Steel", "Glass"];
const STYLES: &[&str] = &["Nordic", "Classic"];
/// The generated catalog's further words (see [`generated_catalog`]).
const MORE_MATERIALS: &[&str] = &["Bamboo", "Copper", "Marble", "Teak", "Rattan", "Wool", "Cotton", "Leather"];
const ADJECTIVES: &[&str] = &[
    "Rustic", "Modern", "Vintage", "Compact", "Grand", "Slim", "Sturdy", "Elegant", "Handmade", "Minimal", "Bold",
    "Soft", "Bright", "Quiet", "Royal", "Urban", "Coastal", "Alpine", "Golden", "Silver",
];
const SIZES: &[&str] = &["Small", "Large"];
const FINISHES: &[&str] = &["matte", "polished", "oiled", "brushed", "lacquered", "natural", "hand-painted"];

/// The number of products in the demo catalog.
pub const DEMO_PRODUCT_COUNT: usize = 210;
/// The most products [`generated_catalog`] makes.
pub const MAX_GENERATED_PRODUCTS: usize = 18_210;

/// Reads a host's demo-seeding setting (Lambda's and the Worker's `DEMO_SEED`): `true` for the demo catalog,
/// a number for that many products of [`generated_catalog`] (the benchmark's fixture is 10000), `false` or
/// nothing for no seeding.
///
/// # Errors
/// A message naming the accepted values.
pub fn seed_setting(value: Option<&str>) -> Result<Option<usize>, String> {
    match value.map(str::trim) {
        None | Some("" | "false") => Ok(None),
        Some("true") => Ok(Some(DEMO_PRODUCT_COUNT)),
        Some(number) => match number.parse::<usize>() {
            Ok(count @ 1..=MAX_GENERATED_PRODUCTS) => Ok(Some(count)),
            _ => Err(format!("must be true, false or a number of products from 1 to {MAX_GENERATED_PRODUCTS}")),
        },
    }
}

/// The demo catalog: [`DEMO_PRODUCT_COUNT`] products, every (category, item, material) combination once
/// (6 × 5 × 7), with deterministic SKUs, prices and stock.
///
/// # Errors
/// Only if a generated product breaks a product rule, which the unit test below rules out.
pub fn demo_catalog() -> Result<Vec<NewProduct>, ProductError> {
    let mut products = Vec::with_capacity(DEMO_PRODUCT_COUNT);
    for (category_index, (category, items)) in CATEGORIES.iter().enumerate() {
        for (item_index, item) in items.iter().enumerate() {
            for (material_index, material) in MATERIALS.iter().enumerate() {
                let seed = category_index * 100 + item_index * 10 + material_index;
                let style = STYLES[seed % STYLES.len()];
                let name = format!("{material} {item}");
                let description = format!(
                    "A {} {} made of {}, in the {} style. Number {} of the demo catalog.",
                    style.to_lowercase(),
                    item.to_lowercase(),
                    material.to_lowercase(),
                    style,
                    products.len() + 1
                );
                let sku = format!("{}-{:02}-{:02}", &category[..3].to_uppercase(), item_index, material_index);
                let cents = i64::try_from(990 + (seed * 737) % 24_000).unwrap_or(990);
                let stock = u32::try_from((seed * 13) % 60).unwrap_or(0);
                products.push(NewProduct::new(&sku, &name, &description, category, Money::new(cents, Currency::EUR), stock)?);
            }
        }
    }
    Ok(products)
}

/// A larger catalog for benchmarks: the demo catalog first, then generated products up to `count` (at most
/// 18,210), each "<adjective> <material> <item>" with a size after the first 9,000, over the demo's six
/// categories, with more materials and a finish in the description. Deterministic, like the demo.
///
/// # Errors
/// As [`demo_catalog`].
pub fn generated_catalog(count: usize) -> Result<Vec<NewProduct>, ProductError> {
    let mut products = demo_catalog()?;
    products.truncate(count);
    let materials: Vec<&str> = MATERIALS.iter().chain(MORE_MATERIALS).copied().collect();
    'sizes: for (size_index, size) in SIZES.iter().enumerate() {
        for (adjective_index, adjective) in ADJECTIVES.iter().enumerate() {
            for (material_index, material) in materials.iter().enumerate() {
                for (category, items) in CATEGORIES {
                    for item in *items {
                        if products.len() >= count {
                            break 'sizes;
                        }
                        let number = products.len() + 1;
                        let name = if size_index == 0 {
                            format!("{adjective} {material} {item}")
                        } else {
                            format!("{size} {adjective} {material} {item}")
                        };
                        let finish = FINISHES[(number * 7 + adjective_index) % FINISHES.len()];
                        let style = STYLES[(number + material_index) % STYLES.len()];
                        let description = format!(
                            "A {} {} in {}, {} finish, in the {} style. Number {} of the generated catalog.",
                            adjective.to_lowercase(),
                            item.to_lowercase(),
                            material.to_lowercase(),
                            finish,
                            style,
                            number
                        );
                        let cents = i64::try_from(500 + (number * 7919) % 49_500).unwrap_or(500);
                        let stock = u32::try_from((number * 17) % 80).unwrap_or(0);
                        let sku = format!("GEN-{number:05}");
                        products.push(NewProduct::new(&sku, &name, &description, category, Money::new(cents, Currency::EUR), stock)?);
                    }
                }
            }
        }
    }
    Ok(products)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_catalog_has_over_two_hundred_valid_products_with_unique_skus() {
        let products = demo_catalog().unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(products.len(), DEMO_PRODUCT_COUNT);
        let skus: std::collections::HashSet<_> = products.iter().map(|product| product.sku.clone()).collect();
        assert_eq!(skus.len(), products.len());
        let categories: std::collections::HashSet<_> = products.iter().map(|product| product.category.clone()).collect();
        assert_eq!(categories.len(), 6);
    }

    #[test]
    fn the_generated_catalog_starts_with_the_demo_and_keeps_skus_unique() {
        let products = generated_catalog(10_000).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(products.len(), 10_000);
        let demo = demo_catalog().unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(products[..DEMO_PRODUCT_COUNT], demo[..]);
        let skus: std::collections::HashSet<_> = products.iter().map(|product| product.sku.clone()).collect();
        assert_eq!(skus.len(), products.len());
        assert_eq!(generated_catalog(5).map(|few| few.len()), Ok(5));
    }
}
