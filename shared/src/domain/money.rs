//! Money: integer minor units with an ISO 4217 currency code. No floating point anywhere.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An ISO 4217 alphabetic currency code (three upper-case ASCII letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// The euro.
    pub const EUR: Currency = Currency(*b"EUR");

    /// Parses a code such as `EUR`.
    ///
    /// # Errors
    /// [`MoneyError::InvalidCurrency`] unless the text is three upper-case ASCII letters.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(MoneyError::InvalidCurrency),
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // The bytes are checked ASCII upper-case letters, so they are always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Self::parse(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Currency {
    /// How many decimal places its minor unit has (ISO 4217): 0 for the yen and the other currencies without
    /// a minor unit, 3 for the dinars that count in thousandths, 2 for every other.
    pub fn exponent(self) -> u32 {
        const NONE: [&str; 17] =
            ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"];
        const THOUSANDTHS: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
        if NONE.contains(&self.as_str()) {
            0
        } else if THOUSANDTHS.contains(&self.as_str()) {
            3
        } else {
            2
        }
    }
}

/// An amount of money: integer minor units (cents for EUR) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount in minor units.
    pub amount: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// An amount in minor units.
    pub const fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// The sum of two amounts of one currency.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] for different currencies, [`MoneyError::Overflow`] past `i64`.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch);
        }
        let amount = self.amount.checked_add(other.amount).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// This amount times a quantity.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] past `i64`.
    pub fn checked_mul(self, quantity: i64) -> Result<Money, MoneyError> {
        let amount = self.amount.checked_mul(quantity).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }
}

/// For people (e-mails, reports): `EUR 12.50`, `JPY 1200`, `EUR -0.05`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = self.currency.exponent();
        let sign = if self.amount < 0 { "-" } else { "" };
        let units = self.amount.unsigned_abs();
        if exponent == 0 {
            return write!(f, "{} {sign}{units}", self.currency);
        }
        let scale = 10_u64.pow(exponent);
        let width = exponent as usize;
        write!(f, "{} {sign}{}.{:0width$}", self.currency, units / scale, units % scale)
    }
}

/// What is wrong with an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not an ISO 4217 alphabetic code.
    #[error("a currency is a three-letter upper-case ISO 4217 code")]
    InvalidCurrency,
    /// Two currencies in one sum.
    #[error("amounts in different currencies cannot be combined")]
    CurrencyMismatch,
    /// The result does not fit.
    #[error("the amount is too large")]
    Overflow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_accepts_only_three_upper_case_letters() {
        assert_eq!(Currency::parse("EUR").map(|c| c.to_string()), Ok("EUR".to_owned()));
        for bad in ["eur", "EU", "EURO", "E1R", "", "ÉUR"] {
            assert_eq!(Currency::parse(bad), Err(MoneyError::InvalidCurrency), "{bad}");
        }
    }

    #[test]
    fn adding_money_of_two_currencies_is_refused() {
        let usd = Currency::parse("USD").unwrap_or(Currency::EUR);
        assert_eq!(Money::new(1, Currency::EUR).checked_add(Money::new(1, usd)), Err(MoneyError::CurrencyMismatch));
        assert_eq!(Money::new(150, Currency::EUR).checked_add(Money::new(250, Currency::EUR)), Ok(Money::new(400, Currency::EUR)));
    }

    #[test]
    fn money_is_shown_with_its_currency_s_decimals() {
        let code = |text| Currency::parse(text).unwrap_or(Currency::EUR);
        assert_eq!(Money::new(1250, Currency::EUR).to_string(), "EUR 12.50");
        assert_eq!(Money::new(-5, Currency::EUR).to_string(), "EUR -0.05");
        assert_eq!(Money::new(1200, code("JPY")).to_string(), "JPY 1200");
        assert_eq!(Money::new(1_005, code("KWD")).to_string(), "KWD 1.005");
        assert_eq!(Money::new(i64::MIN, Currency::EUR).to_string(), "EUR -92233720368547758.08");
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert_eq!(Money::new(i64::MAX, Currency::EUR).checked_add(Money::new(1, Currency::EUR)), Err(MoneyError::Overflow));
        assert_eq!(Money::new(i64::MAX / 2 + 1, Currency::EUR).checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(Money::new(199, Currency::EUR).checked_mul(3), Ok(Money::new(597, Currency::EUR)));
    }
}
