//! The one declaration of every escape: its letter, the Kannel field it
//! shows, what it renders, and whether smsbox URL-encodes it.
//!
//! Compiling (which letters exist), rendering (an exhaustive `match` over
//! [`Field`]), the error message that lists the escapes, the table in the
//! module docs and the tests all follow this list, as Kannel's
//! `gw/msg-decl.h` drives everything about a message's fields. Adding a
//! letter here makes the compiler ask for its rendering.

/// How smsbox writes a value (in `urltrans_fill_escape_codes`, whatever the
/// pattern is for: URL, `text` reply or `exec` command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Smsbox {
    /// Through `octstr_url_encode`: `A-Z a-z 0-9 - _ . ! ~ * ' ( )` as
    /// they are, a space as `+`, every other byte `%XX`.
    Encoded,
    /// Appended as it is.
    Raw,
}

/// One escape of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Escape {
    pub letter: char,
    pub field: Field,
    /// The Kannel `sms` field it shows (`msg-decl.h`'s name).
    #[cfg_attr(not(test), allow(dead_code))]
    pub kannel: &'static str,
    /// What it renders, for the docs.
    #[cfg_attr(not(test), allow(dead_code))]
    pub doc: &'static str,
    pub smsbox: Smsbox,
}

macro_rules! escapes {
    ($( $letter:literal => $field:ident, $kannel:literal, $smsbox:ident, $doc:literal; )*) => {
        /// What an escape shows; rendered in `render.rs`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Field { $( $field, )* }

        /// Every escape with a letter, in the order of the docs.
        pub(crate) const ESCAPES: &[Escape] = &[
            $( Escape {
                letter: $letter,
                field: Field::$field,
                kannel: $kannel,
                doc: $doc,
                smsbox: Smsbox::$smsbox,
            }, )*
        ];
    };
}

escapes! {
    'k' => Keyword, "msgdata", Encoded, "the keyword: the first word";
    's' => NextWord, "msgdata", Encoded, "the next word after the keyword not yet taken by a `%s` or `%S` (each takes one)";
    'S' => NextWordTilde, "msgdata", Raw, "like `%s`, with `*` turned into `~`";
    'r' => Rest, "msgdata", Encoded, "the words not yet taken by `%s`/`%S` (does not take them)";
    'a' => AllWords, "msgdata", Encoded, "all the words, keyword included";
    'b' => Body, "msgdata", Encoded, "the message data exactly as it came (text or binary)";
    'A' => ReportText, "msgdata", Encoded, "the same as `%b`; named for a report's text (the SMSC's answer)";
    'p' => Sender, "receiver", Encoded, "the phone: an MO's sender, or the receiver of the MT a report is about";
    'P' => Receiver, "sender", Encoded, "the other end: the number an MO was sent to, or the sender of the reported MT";
    'q' => SenderPlus, "receiver", Encoded, "`%p` with a leading `00` shown as `+`";
    'Q' => ReceiverPlus, "sender", Encoded, "`%P` with a leading `00` shown as `+`";
    'i' => SmscId, "smsc_id", Encoded, "the smsc-id the message came through";
    'f' => SmscNumber, "smsc_number", Encoded, "the number of the SMSC that delivered it (AT modems only)";
    'I' => Uuid, "id", Raw, "the message's UUID, 36 lowercase characters with hyphens";
    't' => Time, "time", Raw, "the message's time, UTC (format: see differences)";
    'T' => UnixTime, "time", Raw, "the message's time in Unix seconds";
    'c' => Coding, "coding", Raw, "the coding: -1 unset, 0 7-bit, 1 8-bit, 2 UCS-2";
    'C' => Charset, "charset", Raw, "the charset, or by coding `UTF-8` (unset, 7-bit), `8-BIT`, `UTF-16BE`";
    'm' => Mclass, "mclass", Raw, "the message class, -1 when unset";
    'M' => Mwi, "mwi", Raw, "the message waiting indicator, -1 when unset";
    'O' => Dcs, "(DCS)", Raw, "the data coding scheme made from coding, mclass, mwi, compress, alt_dcs; two digits at least";
    'u' => Udh, "udhdata", Encoded, "the user data header";
    'd' => DlrMask, "dlr_mask", Encoded, "the dlr_mask: on a report, its event (1, 2, 4, 8, 16); -1 when unset";
    'D' => MetaData, "meta_data", Encoded, "the meta-data, as Kannel packs it (`?smpp?key=value&`)";
    'F' => ForeignId, "foreign_id", Encoded, "the SMSC's own id for the message";
    'R' => DlrUrl, "dlr_url", Encoded, "the message's dlr-url";
    'n' => Service, "service", Encoded, "the service: the sendsms user or sms-service name";
    'o' => Account, "account", Encoded, "the account (an aggregator's operator id)";
    'B' => Binfo, "binfo", Encoded, "the billing information";
    'v' => Validity, "validity", Raw, "the validity left, in minutes; nothing when unset";
    'V' => Deferred, "deferred", Raw, "the delay left before delivery, in minutes; nothing when unset";
}

/// The escape written `%letter`, if there is one.
pub(crate) fn lookup(letter: char) -> Option<&'static Escape> {
    ESCAPES.iter().find(|e| e.letter == letter)
}

/// `%k %s %S ...`: every letter, for error messages.
pub(crate) fn letter_list() -> String {
    let names: Vec<String> = ESCAPES.iter().map(|e| format!("%{}", e.letter)).collect();
    names.join(" ")
}

/// The table of the module docs, generated from [`ESCAPES`]; a test checks
/// that the docs hold exactly this.
#[cfg(test)]
pub(crate) fn markdown_table() -> String {
    let mut table =
        String::from("| escape | Kannel field | renders | smsbox encodes |\n|---|---|---|---|\n");
    for e in ESCAPES {
        let encodes = match e.smsbox {
            Smsbox::Encoded => "yes",
            Smsbox::Raw => "no",
        };
        table.push_str(&format!(
            "| `%{}` | {} | {} | {} |\n",
            e.letter, e.kannel, e.doc, encodes
        ));
    }
    table
}
