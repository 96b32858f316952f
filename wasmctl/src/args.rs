//! Parsing of command-line values.

use anyhow::{bail, Context, Result};
use wasm_proto::{FuncSig, ValType, Value};

/// Parses `64K`, `16M`, `1G` or a plain byte count.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 10),
        Some((i, 'm' | 'M')) => (&s[..i], 20),
        Some((i, 'g' | 'G')) => (&s[..i], 30),
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a size like 65536, 64K or 16M"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{s}' is too large"))
}

fn parse_int(s: &str) -> Result<i128> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let v = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(hex) => i128::from_str_radix(hex, 16),
        None => body.parse::<i128>(),
    }
    .with_context(|| format!("'{s}' is not an integer"))?;
    Ok(if neg { -v } else { v })
}

/// Parses one value of type `ty`. Integers may be given signed or unsigned.
pub fn parse_value(ty: ValType, s: &str) -> Result<Value> {
    Ok(match ty {
        ValType::I32 => {
            let v = parse_int(s)?;
            if !(i128::from(i32::MIN)..=i128::from(u32::MAX)).contains(&v) {
                bail!("'{s}' does not fit in an i32");
            }
            Value::I32(v as i32)
        }
        ValType::I64 => {
            let v = parse_int(s)?;
            if !(i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&v) {
                bail!("'{s}' does not fit in an i64");
            }
            Value::I64(v as i64)
        }
        ValType::F32 => Value::F32(
            s.parse::<f32>()
                .with_context(|| format!("'{s}' is not a float"))?
                .to_bits(),
        ),
        ValType::F64 => Value::F64(
            s.parse::<f64>()
                .with_context(|| format!("'{s}' is not a float"))?
                .to_bits(),
        ),
        ValType::Other => bail!("parameters of reference or vector type cannot be passed"),
    })
}

/// Parses `args` against a function's parameter types.
pub fn parse_values(sig: &FuncSig, args: &[String]) -> Result<Vec<Value>> {
    if args.len() != sig.params.len() {
        let types: Vec<String> = sig.params.iter().map(ToString::to_string).collect();
        bail!(
            "{} takes {} argument(s) ({}), {} given",
            sig.name,
            sig.params.len(),
            types.join(", "),
            args.len()
        );
    }
    sig.params
        .iter()
        .zip(args)
        .map(|(t, a)| parse_value(*t, a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn values_follow_the_signature() {
        let sig = FuncSig {
            name: "f".into(),
            params: vec![ValType::I32, ValType::I64, ValType::F32, ValType::F64],
            results: vec![],
        };
        let args: Vec<String> = ["-1", "0xffffffffffffffff", "1.5", "nan"]
            .map(String::from)
            .to_vec();
        let v = parse_values(&sig, &args).unwrap();
        assert_eq!(v[0], Value::I32(-1));
        assert_eq!(v[1], Value::I64(-1));
        assert_eq!(v[2], Value::F32(1.5f32.to_bits()));
        assert!(matches!(v[3], Value::F64(b) if f64::from_bits(b).is_nan()));
        assert!(parse_values(&sig, &args[..2])
            .unwrap_err()
            .to_string()
            .contains("takes 4 argument"));
        assert!(parse_value(ValType::I32, "4294967296").is_err());
        assert_eq!(
            parse_value(ValType::I32, "4294967295").unwrap(),
            Value::I32(-1)
        );
    }
}
