//! Which service answers an MO, as Kannel 1.4.5's urltrans.c picks it
//! (`urltrans_find`): first the keyword services whose keyword regex
//! matches the text, in configuration order, taking the first that the
//! MO is allowed to use (`check_allowed_translation`) and whose number of
//! words fits (`check_num_args`); failing that, the first `default`
//! service the MO is allowed to use.

use regex::Regex;

use crate::config::SmsService;

/// The rules of one service that decide whether it takes an MO.
#[derive(Debug, Clone)]
pub struct Rules {
    /// `None` for a `default` service.
    keyword: Option<Regex>,
    /// How many `%s`/`%S` the pattern has.
    args: usize,
    /// Whether the pattern has `%a` or `%r`, which take any further words.
    has_catchall_arg: bool,
    catch_all: bool,
    accepted_smsc: Vec<String>,
    accepted_smsc_regex: Option<Regex>,
    accepted_account: Vec<String>,
    accepted_account_regex: Option<Regex>,
    allowed_prefix: Vec<String>,
    allowed_prefix_regex: Option<Regex>,
    denied_prefix: Vec<String>,
    denied_prefix_regex: Option<Regex>,
    allowed_receiver_prefix: Vec<String>,
    allowed_receiver_prefix_regex: Option<Regex>,
    denied_receiver_prefix: Vec<String>,
    denied_receiver_prefix_regex: Option<Regex>,
    white_list: Option<Vec<i64>>,
    white_list_regex: Option<Regex>,
    black_list: Vec<i64>,
    black_list_regex: Option<Regex>,
}

/// The MO fields selection looks at.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub text: &'a str,
    /// The phone.
    pub sender: &'a str,
    /// The number it wrote to.
    pub receiver: &'a str,
    pub smsc_id: Option<&'a str>,
    pub account: Option<&'a str>,
}

/// Why a service's rules do not compile: the key and the regex error.
pub type RuleError = (&'static str, regex::Error);

impl Rules {
    /// Compiles a service's rules. `pattern` is its action's pattern
    /// (URL, text...), whose `%s`/`%S`/`%a`/`%r` count words.
    pub fn compile(service: &SmsService, pattern: &str) -> Result<Rules, RuleError> {
        use crate::config::compile_regex as re;
        let opt = |key: &'static str, v: &Option<String>| -> Result<Option<Regex>, RuleError> {
            v.as_deref()
                .map(|s| re(s, false).map_err(|e| (key, e)))
                .transpose()
        };
        let keyword = match (&service.keyword_regex, service.keyword_pattern()) {
            (Some(source), _) => Some(re(source, false).map_err(|e| ("keyword_regex", e))?),
            (None, Some(source)) => Some(re(&source, true).map_err(|e| ("keyword", e))?),
            (None, None) => None,
        };
        // urltrans.c counts the two-character strings in the raw pattern.
        let args = pattern.matches("%s").count() + pattern.matches("%S").count();
        let has_catchall_arg = pattern.contains("%r") || pattern.contains("%a");
        let posts = service.post_url.is_some() || service.post_xml.is_some();
        Ok(Rules {
            keyword,
            args,
            has_catchall_arg,
            catch_all: service.catch_all || posts,
            accepted_smsc: service.accepted_smsc.clone(),
            accepted_smsc_regex: opt("accepted_smsc_regex", &service.accepted_smsc_regex)?,
            accepted_account: service.accepted_account.clone(),
            accepted_account_regex: opt("accepted_account_regex", &service.accepted_account_regex)?,
            allowed_prefix: service.allowed_prefix.clone(),
            allowed_prefix_regex: opt("allowed_prefix_regex", &service.allowed_prefix_regex)?,
            denied_prefix: service.denied_prefix.clone(),
            denied_prefix_regex: opt("denied_prefix_regex", &service.denied_prefix_regex)?,
            allowed_receiver_prefix: service.allowed_receiver_prefix.clone(),
            allowed_receiver_prefix_regex: opt(
                "allowed_receiver_prefix_regex",
                &service.allowed_receiver_prefix_regex,
            )?,
            denied_receiver_prefix: service.denied_receiver_prefix.clone(),
            denied_receiver_prefix_regex: opt(
                "denied_receiver_prefix_regex",
                &service.denied_receiver_prefix_regex,
            )?,
            white_list: service
                .white_list
                .as_ref()
                .map(|l| l.iter().map(|n| number_key(n)).collect()),
            white_list_regex: opt("white_list_regex", &service.white_list_regex)?,
            black_list: service.black_list.iter().map(|n| number_key(n)).collect(),
            black_list_regex: opt("black_list_regex", &service.black_list_regex)?,
        })
    }

    /// Whether this is a `default` service.
    pub fn is_default(&self) -> bool {
        self.keyword.is_none()
    }

    /// `check_allowed_translation`, in its order and with its quirks: a
    /// denied list counts only without an allowed one (and the other way
    /// round), and both together refuse a sender only when it is outside
    /// the allowed and inside the denied.
    pub fn allows(&self, mo: &Candidate<'_>) -> bool {
        let found = |re: &Option<Regex>, s: &str| re.as_ref().map(|re| re.is_match(s));
        if let Some(smsc) = mo.smsc_id {
            if !self.accepted_smsc.is_empty() && !self.accepted_smsc.iter().any(|a| a == smsc) {
                return false;
            }
            if found(&self.accepted_smsc_regex, smsc) == Some(false) {
                return false;
            }
        }
        if let Some(account) = mo.account {
            if !self.accepted_account.is_empty()
                && !self.accepted_account.iter().any(|a| a == account)
            {
                return false;
            }
            if found(&self.accepted_account_regex, account) == Some(false) {
                return false;
            }
        }
        let (s, r) = (mo.sender, mo.receiver);
        let (allow, deny) = (&self.allowed_prefix, &self.denied_prefix);
        if !allow.is_empty() && deny.is_empty() && !prefix_match(allow, s) {
            return false;
        }
        let (allow_re, deny_re) = (&self.allowed_prefix_regex, &self.denied_prefix_regex);
        if deny_re.is_none() && found(allow_re, s) == Some(false) {
            return false;
        }
        if !deny.is_empty() && allow.is_empty() && prefix_match(deny, s) {
            return false;
        }
        if allow_re.is_none() && found(deny_re, s) == Some(true) {
            return false;
        }
        let (rallow, rdeny) = (&self.allowed_receiver_prefix, &self.denied_receiver_prefix);
        if !rallow.is_empty() && rdeny.is_empty() && !prefix_match(rallow, r) {
            return false;
        }
        let (rallow_re, rdeny_re) = (
            &self.allowed_receiver_prefix_regex,
            &self.denied_receiver_prefix_regex,
        );
        if rdeny_re.is_none() && found(rallow_re, r) == Some(false) {
            return false;
        }
        if !rdeny.is_empty() && rallow.is_empty() && prefix_match(rdeny, r) {
            return false;
        }
        // Kannel refuses when the denied receiver regex does NOT match
        // (`== 0`): a bug in 1.4.5 kept as it behaves.
        if rallow_re.is_none() && found(rdeny_re, r) == Some(false) {
            return false;
        }
        let key = number_key(s);
        if self.white_list.as_ref().is_some_and(|l| !l.contains(&key)) {
            return false;
        }
        if found(&self.white_list_regex, s) == Some(false) {
            return false;
        }
        if self.black_list.contains(&key) {
            return false;
        }
        if found(&self.black_list_regex, s) == Some(true) {
            return false;
        }
        if !allow.is_empty() && !deny.is_empty() && !prefix_match(allow, s) && prefix_match(deny, s)
        {
            return false;
        }
        if let (Some(a), Some(d)) = (allow_re, deny_re) {
            if !a.is_match(s) && d.is_match(s) {
                return false;
            }
        }
        true
    }

    /// `check_num_args`: the words after the keyword fit the pattern.
    fn fits(&self, words: usize) -> bool {
        let after = words.saturating_sub(1);
        self.catch_all || after == self.args || (self.has_catchall_arg && after >= self.args)
    }
}

/// `does_prefix_match`: `number` starts with one of `prefixes`.
fn prefix_match(prefixes: &[String], number: &str) -> bool {
    prefixes
        .iter()
        .any(|p| !p.is_empty() && number.starts_with(p.as_str()))
}

/// A number as Kannel's numhash keys it: its last 19 characters read by
/// `strtoll` (so `+4912` and `004912` are both 4912).
fn number_key(number: &str) -> i64 {
    let start = number.len().saturating_sub(19);
    let tail = number.get(start..).unwrap_or(number).trim_start();
    let (negative, digits) = match tail.as_bytes().first() {
        Some(b'-') => (true, &tail[1..]),
        Some(b'+') => (false, &tail[1..]),
        _ => (false, tail),
    };
    let value = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |acc, d| {
            acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    if negative {
        -value
    } else {
        value
    }
}

/// The index of the service that takes `mo`, if any: `rules` are the
/// services in configuration order.
pub fn select(rules: &[Rules], mo: &Candidate<'_>) -> Option<usize> {
    // find_translation: NUL characters are taken out before matching.
    let text: String = mo.text.chars().filter(|&c| c != '\0').collect();
    let words = text.split(is_c_space).filter(|w| !w.is_empty()).count();
    let keyword = rules.iter().position(|r| {
        r.keyword.as_ref().is_some_and(|re| re.is_match(&text)) && r.allows(mo) && r.fits(words)
    });
    keyword.or_else(|| rules.iter().position(|r| r.is_default() && r.allows(mo)))
}

/// C's `isspace` in the C locale, which Kannel splits words on.
pub fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
