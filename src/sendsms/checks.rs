//! smsbox's checks of a sendsms request, one function each, called in
//! smsbox's order by [`super::parse`] (`smsbox_req_handle` in
//! gw/smsbox.c), so that a request with several problems gets the answer
//! smsbox gives.

use std::collections::BTreeSet;

use tracing::info;

use super::params::Fields;
use super::Refusal;
use crate::config::SendsmsUser;

/// smsbox's default `sendsms-chars`: what a receiver may be made of.
const RECEIVER_CHARS: &[u8] = b"0123456789 +-";

/// The longest `account` smsbox takes (`ACCOUNT_MAX_LEN`).
const ACCOUNT_MAX_LEN: usize = 64;

/// The longest UDH smsbox takes (`MAX_SMS_OCTETS`).
const UDH_MAX_LEN: usize = 140;

/// The UDH: its first octet must be its length, and it must fit an SMS.
/// An empty UDH is no UDH.
pub fn udh(udh: Option<&[u8]>) -> Result<Option<Vec<u8>>, Refusal> {
    let Some(udh) = udh.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    if usize::from(udh[0]) + 1 != udh.len() {
        return Err(Refusal::Misformed("UDH"));
    }
    if udh.len() > UDH_MAX_LEN {
        return Err(Refusal::UdhTooLong);
    }
    Ok(Some(udh.to_vec()))
}

/// The receivers: `to` split on any white space (or the XML's list),
/// duplicates dropped, and dropped too (smsbox logs them) those with
/// characters other than digits, `+` and `-`, those the user's
/// `white_list_regex` does not match and those its `black_list_regex`
/// matches; refused when none is left.
pub fn receivers(fields: &Fields, user: &SendsmsUser) -> Result<Vec<String>, Refusal> {
    let words: Vec<Vec<u8>> = match (&fields.receivers, &fields.to) {
        (Some(list), _) => list.iter().map(|r| r.as_bytes().to_vec()).collect(),
        (None, Some(to)) => to
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
        (None, None) => Vec::new(),
    };
    let mut seen = BTreeSet::new();
    let mut allowed = Vec::new();
    for word in words {
        let shown = String::from_utf8_lossy(&word).into_owned();
        if !word.iter().all(|b| RECEIVER_CHARS.contains(b)) {
            info!(receiver = %shown, "sendsms: illegal characters in a receiver; dropped");
        } else if user
            .white_list_regex
            .as_ref()
            .is_some_and(|white| !white.is_match(&shown))
        {
            info!(receiver = %shown, "sendsms: not in the user's white-list-regex; dropped");
        } else if user
            .black_list_regex
            .as_ref()
            .is_some_and(|black| black.is_match(&shown))
        {
            info!(receiver = %shown, "sendsms: in the user's black-list-regex; dropped");
        } else if seen.insert(shown.clone()) {
            allowed.push(shown);
        }
    }
    if allowed.is_empty() {
        return Err(Refusal::Denied);
    }
    Ok(allowed)
}

/// The `account`: at most 64 octets, without `[`, `]`, CR or LF (they
/// would break the bearerbox's store and access log lines).
pub fn account(account: Option<&[u8]>) -> Result<Option<String>, Refusal> {
    let Some(account) = account.filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    if account.len() > ACCOUNT_MAX_LEN || account.iter().any(|b| b"[]\n\r".contains(b)) {
        return Err(Refusal::Account);
    }
    Ok(Some(String::from_utf8_lossy(account).into_owned()))
}

/// The `dlr-url`: an `http://` or `https://` URL (any case), or nothing.
pub fn dlr_url(url: Option<&[u8]>) -> Result<Option<String>, Refusal> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let starts = |prefix: &[u8]| {
        url.len() >= prefix.len() && url[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    if url.len() < 8 || !(starts(b"http://") || starts(b"https://")) {
        return Err(Refusal::Misformed("DLR-URL"));
    }
    Ok(Some(String::from_utf8_lossy(url).into_owned()))
}

/// The integer fields' ranges, in smsbox's order. smsbox 1.4.5 takes a
/// `dlr-mask` up to 66 (measured), not the 63 of later versions.
pub fn ranges(f: &Fields) -> Result<(), Refusal> {
    let checks: [(i32, &'static str, i32, i32); 11] = [
        (f.dlr_mask, "DLR-Mask", -1, 66),
        (f.mclass, "MClass", -1, 3),
        (f.pid, "PID", -1, 255),
        (f.rpi, "RPI", -1, 2),
        (f.alt_dcs, "Alt-DCS", -1, 1),
        (f.mwi, "MWI", -1, 7),
        (f.coding, "Coding", -1, 2),
        (f.compress, "Compress", -1, 1),
        (f.validity, "Validity", -1, i32::MAX),
        (f.deferred, "Deferred", -1, i32::MAX),
        (f.priority, "Priority", -1, 3),
    ];
    for (value, name, low, high) in checks {
        if !(low..=high).contains(&value) {
            return Err(Refusal::Misformed(name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_split_on_any_white_space_and_bad_ones_are_dropped() {
        let user = SendsmsUser::new("u", "p");
        let fields = Fields {
            to: Some(b"1\t+2-3\nabc  1 4\r5".to_vec()),
            ..Fields::default()
        };
        assert_eq!(receivers(&fields, &user).unwrap(), ["1", "+2-3", "4", "5"]);
        let fields = Fields {
            to: Some(b"abc".to_vec()),
            ..Fields::default()
        };
        assert_eq!(receivers(&fields, &user), Err(Refusal::Denied));
    }

    /// As measured with smsbox 1.4.5: `white-list-regex = "^\+256"`,
    /// `black-list-regex = "70"`.
    #[test]
    fn the_users_white_and_black_list_regexes_drop_receivers() {
        let mut user = SendsmsUser::new("u", "p");
        user.white_list_regex = crate::config::Pattern::new("^\\+256").ok();
        user.black_list_regex = crate::config::Pattern::new("70").ok();
        let fields = Fields {
            to: Some(b"+25670111 +256780000 +1 256999".to_vec()),
            ..Fields::default()
        };
        assert_eq!(receivers(&fields, &user).unwrap(), ["+256780000"]);
        let fields = Fields {
            to: Some(b"+1".to_vec()),
            ..Fields::default()
        };
        assert_eq!(receivers(&fields, &user), Err(Refusal::Denied));
    }

    #[test]
    fn account_and_dlr_url_are_checked_as_smsbox_checks_them() {
        assert_eq!(
            account(Some(&[b'a'; 64])).unwrap().map(|a| a.len()),
            Some(64)
        );
        for bad in [&[b'a'; 65][..], b"a[b", b"a\nb"] {
            assert_eq!(account(Some(bad)), Err(Refusal::Account));
        }
        assert_eq!(account(Some(b"")), Ok(None));
        for good in [&b"http://h/"[..], b"HTTPS://h", b"http://x"] {
            assert!(dlr_url(Some(good)).is_ok(), "{good:?}");
        }
        for bad in [&b"ftp://x/y"[..], b"http:/", b"mailto:someone"] {
            assert_eq!(dlr_url(Some(bad)), Err(Refusal::Misformed("DLR-URL")));
        }
    }

    #[test]
    fn a_udh_must_announce_its_length_and_fit() {
        assert_eq!(udh(Some(b"")), Ok(None));
        assert_eq!(udh(Some(&[2, 0, 0])), Ok(Some(vec![2, 0, 0])));
        assert_eq!(udh(Some(&[6, 5])), Err(Refusal::Misformed("UDH")));
        let mut long = vec![0u8; 144];
        long[0] = 143;
        assert_eq!(udh(Some(&long)), Err(Refusal::UdhTooLong));
    }
}
