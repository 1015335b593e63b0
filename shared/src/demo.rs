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

/// The number of products in the demo catalog.
pub const DEMO_PRODUCT_COUNT: usize = 210;

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
}
