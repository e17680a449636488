//! The log's pages and its search, as httprouter's console has it: every
//! keyword must match, each against the message's text, the text of the
//! message it answers, or its connection's identity, ignoring case.
//!
//! Both read the store newest first and stop after [`SCAN_LIMIT`]
//! messages, so a page costs at most that many reads whatever the store
//! holds: a search finds matches among the newest 10,000 messages, and
//! plain paging reaches back as far. Older messages are still reachable
//! by id, on their detail page.

use std::collections::HashMap;

use crate::model::{Message, MessageId};
use crate::store::{Store, StoreError, MAX_SCAN};

/// Messages per page.
pub const PAGE_SIZE: usize = 20;

/// The most messages one page or search reads.
pub const SCAN_LIMIT: usize = MAX_SCAN;

/// The most keywords a search takes; more are ignored rather than making
/// one request cost arbitrarily many comparisons per message.
pub const MAX_KEYWORDS: usize = 16;

/// A search: lower-cased keywords, all of which must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    keywords: Vec<String>,
}

impl Query {
    /// The keywords of `text`, split on whitespace.
    pub fn parse(text: &str) -> Query {
        Query {
            keywords: text
                .split_whitespace()
                .take(MAX_KEYWORDS)
                .map(str::to_lowercase)
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keywords.is_empty()
    }

    /// Whether every keyword is in `message`'s text, `answered`'s text or
    /// the identity.
    pub fn matches(&self, message: &Message, answered: Option<&str>) -> bool {
        let text = message.text.to_lowercase();
        let answered = answered.map(str::to_lowercase).unwrap_or_default();
        let identity = message.connection.identity.to_lowercase();
        self.keywords
            .iter()
            .all(|k| text.contains(k) || answered.contains(k) || identity.contains(k))
    }
}

/// One page of the log.
#[derive(Debug, Clone)]
pub struct Page {
    pub messages: Vec<Message>,
    /// The texts of the messages these answer, by id.
    pub answered: HashMap<MessageId, String>,
    /// 1-based.
    pub number: usize,
    /// How many pages there are (at least 1).
    pub count: usize,
    /// Messages found (for a search, matches among those scanned).
    pub total: u64,
    /// True when the scan stopped at [`SCAN_LIMIT`], so older messages
    /// were not looked at.
    pub truncated: bool,
}

/// Page `number` (1-based; past the end means the last) of the log, or of
/// the messages matching `query`. A long read (up to [`SCAN_LIMIT`]
/// messages): run it under [`Store::long_read`].
pub async fn page(store: &Store, query: &Query, number: usize) -> Result<Page, StoreError> {
    let number = number.max(1);
    let (mut matched, total, truncated) = if query.is_empty() {
        let total: u64 = store.counts().await?.iter().map(|(_, _, n)| n).sum();
        let reachable = (SCAN_LIMIT / PAGE_SIZE) * PAGE_SIZE;
        let last = pages(total.min(reachable as u64));
        let wanted = number.min(last) * PAGE_SIZE;
        let recent = store.recent_messages(None, wanted).await?;
        (recent, total, total > reachable as u64)
    } else {
        let recent = store.recent_messages(None, SCAN_LIMIT).await?;
        let truncated = recent.len() == SCAN_LIMIT;
        let texts: HashMap<MessageId, String> =
            recent.iter().map(|m| (m.id, m.text.clone())).collect();
        let mut matched = Vec::new();
        for m in recent {
            let answered = answered_text(store, &texts, &m).await?;
            if query.matches(&m, answered.as_deref()) {
                matched.push(m);
            }
        }
        let total = matched.len() as u64;
        (matched, total, truncated)
    };
    let count = pages(if query.is_empty() {
        total.min(((SCAN_LIMIT / PAGE_SIZE) * PAGE_SIZE) as u64)
    } else {
        total
    });
    let number = number.min(count);
    let start = ((number - 1) * PAGE_SIZE).min(matched.len());
    let end = (start + PAGE_SIZE).min(matched.len());
    let messages: Vec<Message> = matched.drain(start..end).collect();
    let mut answered = HashMap::new();
    for m in &messages {
        if let Some(id) = m.in_response_to {
            if let Some(other) = store.message(id).await? {
                answered.insert(id, other.text);
            }
        }
    }
    Ok(Page {
        messages,
        answered,
        number,
        count,
        total,
        truncated,
    })
}

/// The text of the message `m` answers: from the scanned messages when it
/// is among them, else from the store.
async fn answered_text(
    store: &Store,
    scanned: &HashMap<MessageId, String>,
    m: &Message,
) -> Result<Option<String>, StoreError> {
    let Some(id) = m.in_response_to else {
        return Ok(None);
    };
    if let Some(text) = scanned.get(&id) {
        return Ok(Some(text.clone()));
    }
    Ok(store.message(id).await?.map(|other| other.text))
}

/// Pages needed for `n` messages, at least one.
fn pages(n: u64) -> usize {
    (usize::try_from(n).unwrap_or(usize::MAX).div_ceil(PAGE_SIZE)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Connection, Direction};

    fn msg(text: &str, identity: &str) -> Message {
        Message::new(1, Connection::new("b", identity), Direction::Incoming, text)
    }

    #[test]
    fn every_keyword_must_match_text_answered_text_or_identity() {
        let q = Query::parse("  HELLO  2507 ");
        let m = msg("well hello there", "+250-788");
        assert!(q.matches(&m, None));
        assert!(!Query::parse("hello bye").matches(&m, None));
        assert!(Query::parse("hello bye").matches(&m, Some("Bye now")));
        assert!(Query::parse("").is_empty());
        assert!(Query::parse("x").matches(&msg("X", "1"), None));
    }

    #[test]
    fn keywords_are_bounded() {
        let many = "a ".repeat(100);
        assert_eq!(Query::parse(&many).keywords.len(), MAX_KEYWORDS);
        assert_eq!(pages(0), 1);
        assert_eq!(pages(45), 3);
    }
}
