//! Parsers for the config's scalar notations: addresses, prefixes, MACs,
//! durations and names. Each returns the reason as a lowercase message that
//! quotes what was written.

use std::net::IpAddr;
use std::time::Duration;

use super::types::{Prefix, Share, StatusCodes};

/// Parses a unicast IP address.
pub(super) fn address(text: &str) -> Result<IpAddr, String> {
    let addr: IpAddr = text
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address"))?;
    if addr.is_unspecified() || addr.is_multicast() || addr == IpAddr::from([255, 255, 255, 255]) {
        return Err(format!("{addr} is not a unicast address"));
    }
    Ok(addr)
}

/// Whether `addr`, the network address of an outer source prefix, is one
/// a backend accepts packets from.
pub(super) fn is_unicast_source(addr: IpAddr) -> bool {
    let broadcast = addr == IpAddr::from([255, 255, 255, 255]);
    !(addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() || broadcast)
}

/// Parses `ADDRESS/LENGTH`, or a bare address as a full-length prefix. The
/// host bits must be zero, so a typo cannot silently widen the prefix.
pub(super) fn prefix(text: &str) -> Result<Prefix, String> {
    let (addr_text, len_text) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text, None),
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| format!("{text:?} is not an address prefix"))?;
    let width = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len_text {
        None => width,
        // Digits only: `u8::from_str` would also take a sign, as in /+24.
        Some(len) => Some(len)
            .filter(|len| !len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|len| len.parse::<u8>().ok())
            .filter(|&len| len <= width)
            .ok_or_else(|| format!("{text:?} has a prefix length outside 0..={width}"))?,
    };

    let host_mask = u128::MAX.checked_shr(u32::from(len) + 128 - u32::from(width));
    let bits = match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    };
    if bits & host_mask.unwrap_or(0) != 0 {
        return Err(format!("{text:?} has host bits set after the first {len}"));
    }
    Ok(Prefix { addr, len })
}

/// Parses a unicast MAC address written as six colon-separated hex bytes.
pub(super) fn mac(text: &str) -> Result<[u8; 6], String> {
    let bad = || format!("{text:?} is not a MAC address like 02:00:00:00:00:01");
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        // Hex digits only: `from_str_radix` would also take a sign, as in +2.
        let part = parts
            .next()
            .filter(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(bad)?;
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    // A frame to a group or all-zero address never reaches one next hop.
    if mac[0] & 1 != 0 || mac == [0; 6] {
        return Err(format!(
            "{text:?} is not a unicast MAC address (group bit set, or all zero)"
        ));
    }
    Ok(mac)
}

/// Parses a duration written as a whole number and a unit: `500ms`, `2s`,
/// `5m`, `1h`.
pub(super) fn duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a duration; write a whole number and ms, s, m or h, as in 2s or 500ms"
        )
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    let millis = number.checked_mul(millis_per_unit).ok_or_else(bad)?;
    Ok(Duration::from_millis(millis))
}

/// Parses HTTP status codes written as codes and ranges separated by
/// commas: `200`, `200-399`, `200-299,304`. Each code is in 100..=599.
pub(super) fn status_codes(text: &str) -> Result<StatusCodes, String> {
    let bad = || {
        format!(
            "{text:?} is not a list of status codes in 100..=599, written like 200-399 or 200,204"
        )
    };
    let code = |part: &str| {
        part.trim()
            .parse::<u16>()
            .ok()
            .filter(|code| (100..=599).contains(code))
            .ok_or_else(bad)
    };
    let mut ranges = Vec::new();
    for part in text.split(',') {
        let range = match part.split_once('-') {
            Some((first, last)) => (code(first)?, code(last)?),
            None => (code(part)?, code(part)?),
        };
        if range.0 > range.1 {
            return Err(bad());
        }
        ranges.push(range);
    }
    Ok(StatusCodes::from_ranges(ranges))
}

/// Checks a share written as a number from 0 to 1, as in `0.5`.
pub(super) fn share(value: f64) -> Result<Share, String> {
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("{value} is not a share from 0 to 1, as in 0.5"));
    }
    // In range, so the product fits a u16 and the cast cannot truncate.
    let basis_points = (value * 10_000.0).round() as u16;
    Share::from_basis_points(basis_points).ok_or_else(|| format!("{value} is above 1"))
}

/// Parses a percentage from 0% to 100% with at most two decimals, as in
/// `5%` or `12.5%`.
pub(super) fn percent(text: &str) -> Result<Share, String> {
    let bad = || format!("{text:?} is not a share from 0% to 100%, as in 5% or 12.5%");
    let number = text.strip_suffix('%').ok_or_else(bad)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 2 {
        return Err(bad());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let fraction: u32 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    let basis_points = whole.checked_mul(100).and_then(|w| w.checked_add(fraction));
    basis_points
        .and_then(|bp| u16::try_from(bp).ok())
        .and_then(Share::from_basis_points)
        .ok_or_else(bad)
}

/// Checks a name used in logs and metric labels: 1 to 63 characters of
/// `[a-z0-9_-]`.
pub(super) fn name(text: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if text.is_empty() || text.len() > 63 || !text.chars().all(allowed) {
        return Err(format!(
            "{text:?} is not a name of 1 to 63 characters from [a-z0-9_-]"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_with_or_without_a_length() {
        let p = prefix("10.255.0.0/24").expect("valid prefix");
        assert_eq!(
            (p.addr, p.len, p.host_bits()),
            ("10.255.0.0".parse().unwrap(), 24, 8)
        );
        let p = prefix("fd00:ffff::/112").expect("valid prefix");
        assert_eq!((p.len, p.host_bits()), (112, 16));
        assert_eq!(prefix("10.0.0.7").expect("bare address").len, 32);
        assert_eq!(prefix("0.0.0.0/0").expect("default route").host_bits(), 32);
    }

    #[test]
    fn prefixes_with_host_bits_or_bad_lengths_are_rejected() {
        let err = prefix("10.255.0.5/24").expect_err("host bits set");
        assert_eq!(
            err,
            "\"10.255.0.5/24\" has host bits set after the first 24"
        );
        assert!(prefix("10.0.0.0/33").is_err());
        assert!(prefix("fd00::1/129").is_err());
        assert!(prefix("fd00::/x").is_err());
        assert!(prefix("10.0.0.0/+8").is_err());
        assert!(prefix("10.0.0.0/").is_err());
        assert!(prefix("bogus/8").is_err());
    }

    #[test]
    fn addresses_must_be_unicast() {
        assert!(address("2001:db8::1").is_ok());
        assert_eq!(
            address("10.0.0.300").unwrap_err(),
            "\"10.0.0.300\" is not an IP address"
        );
        assert_eq!(
            address("0.0.0.0").unwrap_err(),
            "0.0.0.0 is not a unicast address"
        );
        assert!(address("224.0.0.1").is_err());
        assert!(address("ff02::1").is_err());
    }

    #[test]
    fn durations_take_a_whole_number_and_a_unit() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["2 parsecs", "2", "s", "1.5s", "-1s", "2S", ""] {
            assert!(duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn macs_need_six_hex_bytes() {
        assert_eq!(mac("02:00:00:00:00:0a"), Ok([2, 0, 0, 0, 0, 10]));
        for bad in [
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "2:0:0:0:0:1",
            "zz:00:00:00:00:00",
            "+2:00:00:00:00:01",
        ] {
            assert!(mac(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_gateway_mac_must_be_unicast() {
        for bad in [
            "ff:ff:ff:ff:ff:ff",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
        ] {
            assert!(mac(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn status_codes_take_codes_and_ranges() {
        let codes = status_codes("200-299, 304").expect("valid codes");
        assert!(codes.contains(204) && codes.contains(304) && !codes.contains(302));
        assert_eq!(codes.to_string(), "200-299,304");
        for bad in ["", "2xx", "99", "600", "300-200", "200-", "200,,204"] {
            assert!(status_codes(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn shares_run_from_zero_to_one() {
        assert_eq!(share(0.5).map(Share::basis_points), Ok(5000));
        assert_eq!(share(0.0), Ok(Share::ZERO));
        assert!(share(1.5).is_err() && share(-0.1).is_err() && share(f64::NAN).is_err());
    }

    #[test]
    fn percentages_take_up_to_two_decimals() {
        assert_eq!(percent("5%").map(Share::basis_points), Ok(500));
        assert_eq!(percent("12.5%").map(Share::basis_points), Ok(1250));
        assert_eq!(percent("100%"), Ok(Share::ONE));
        assert_eq!(percent("0%"), Ok(Share::ZERO));
        for bad in ["5", "101%", "-1%", "1.234%", "%", ".5%", "5 %", "1e1%"] {
            assert!(percent(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn names_are_lowercase_words() {
        assert!(name("web-1_a").is_ok());
        for bad in ["", "Web", "a b", "a.b", &"x".repeat(64)] {
            assert!(name(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
