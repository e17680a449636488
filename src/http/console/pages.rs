//! The console's HTML, with maud: compile-time templates that escape
//! every value they insert, so message text (which anyone who can send an
//! SMS controls) always shows as text.
//!
//! Pages load no inline script or style: the script and stylesheet are
//! served from `/router/console/`, so the Content-Security-Policy can
//! forbid inline scripts altogether, a second line against injection.

use maud::{html, Markup};

use super::search::Page;
use crate::http::answer::{iso8601, FieldErrors};
use crate::http::page;
pub use crate::http::page::{render, BASE};
use crate::model::{DeliveryError, Direction, DlrEvent, Message, Micros};

/// The stylesheet, served as `/router/console/console.css`.
pub const CSS: &str = include_str!("console.css");

/// The live-update script, served as `/router/console/console.js`.
pub const JS: &str = include_str!("console.js");

/// The logged-in user, for the header and the forms.
pub struct User<'a> {
    pub name: &'a str,
    pub csrf: &'a str,
}

/// What the log page shows besides the log.
#[derive(Default)]
pub struct Forms<'a> {
    pub query: &'a str,
    /// A note after a successful action.
    pub notice: Option<&'a str>,
    /// Problems with the last form sent, by field.
    pub errors: FieldErrors,
    /// The values to show again in the forms after an error.
    pub sender: &'a str,
    pub text: &'a str,
    pub recipient: &'a str,
    pub reply_text: &'a str,
}

/// The default sender of a test message, httprouter's.
pub const DEFAULT_SENDER: &str = "12065551212";

fn date(micros: Micros) -> String {
    format!("{} UTC", iso8601(micros).replace('T', " "))
}

/// A console page: the shared chrome, with the logged-in user and the
/// logout button in the header.
fn layout(title: &str, user: Option<&User>, head: Markup, body: Markup) -> Markup {
    let user = html! {
        @if let Some(user) = user {
            span.user { "Logged in as " strong { (user.name) } }
            form.inline method="post" action={ (BASE) "/logout" } {
                input type="hidden" name="csrf" value=(user.csrf);
                button type="submit" { "Log out" }
            }
        }
    };
    page::layout(title, user, head, body)
}

fn field_error(errors: &FieldErrors, name: &str) -> Markup {
    html! {
        @if let Some(e) = errors.get(name) {
            p.error role="alert" data-field=(name) { (name) ": " (e) }
        }
    }
}

/// The login page.
pub fn login(csrf: &str, username: &str, error: Option<&str>, notice: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        html! {},
        html! {
            h1 { "Log in" }
            @if let Some(notice) = notice { p.notice { (notice) } }
            @if let Some(error) = error { p.error #login-error role="alert" { (error) } }
            form #login method="post" action={ (BASE) "/login" } {
                input type="hidden" name="csrf" value=(csrf);
                label { "Username " input name="username" value=(username) autocomplete="username" required; }
                label { "Password " input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
        },
    )
}

/// A page with only a message, for errors.
pub fn message_page(title: &str, text: &str) -> Markup {
    layout(
        title,
        None,
        html! {},
        html! {
            h1 { (title) }
            p.error role="alert" { (text) }
            p { a href=(BASE) { "Back to the console" } }
        },
    )
}

/// The query string of the log page `page` of `query`.
pub fn log_query(query: &str, page: usize) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if !query.is_empty() {
        q.append_pair("q", query);
    }
    if page > 1 {
        q.append_pair("page", &page.to_string());
    }
    q.finish()
}

/// The log page: forms, search, the log.
pub fn console(user: &User, page: &Page, forms: &Forms) -> Markup {
    let fragment = format!("{BASE}/fragment?{}", log_query(forms.query, page.number));
    let here = format!("{BASE}?{}", log_query(forms.query, page.number));
    layout(
        "Console",
        Some(user),
        html! {
            script src={ (BASE) "/console.js" } defer {}
            // Without JavaScript there are no live updates: reload now and
            // then instead.
            noscript { meta http-equiv="refresh" content="30"; }
        },
        html! {
            @if let Some(notice) = forms.notice { p.notice #notice { (notice) } }
            div.forms {
                form #send method="post" action={ (BASE) "/send" } {
                    h2 { "Send a test message" }
                    input type="hidden" name="csrf" value=(user.csrf);
                    (field_error(&forms.errors, "sender"))
                    label { "Sender " input name="sender" value=(if forms.sender.is_empty() { DEFAULT_SENDER } else { forms.sender }); }
                    (field_error(&forms.errors, "text"))
                    label { "Text " input name="text" value=(forms.text) required; }
                    button type="submit" { "Send" }
                    p.hint { "Goes through the apps as if received on backend " code { "console" } "; the replies appear in the log." }
                }
                form #reply method="post" action={ (BASE) "/reply" } {
                    h2 { "Reply" }
                    input type="hidden" name="csrf" value=(user.csrf);
                    (field_error(&forms.errors, "recipient"))
                    label { "Recipient " input name="recipient" value=(forms.recipient) required; }
                    (field_error(&forms.errors, "reply_text"))
                    label { "Text " input name="reply_text" value=(forms.reply_text) required; }
                    button type="submit" { "Send reply" }
                    p.hint { "Sent through the backend the number is known on (the most recent, if several)." }
                }
            }
            form #search method="get" action=(BASE) {
                label { "Search " input type="search" name="q" value=(forms.query) placeholder="keywords, all must match"; }
                button type="submit" { "Search" }
                @if !forms.query.is_empty() { " " a href=(BASE) { "Clear" } }
            }
            div #log data-src=(fragment) { (log(page, forms.query)) }
            p.reload { a #reload href=(here) { "Reload" } }
        },
    )
}

/// The log table and its pagination: what live updates replace.
pub fn log(page: &Page, query: &str) -> Markup {
    html! {
        @if page.messages.is_empty() {
            p.empty { @if query.is_empty() { "No messages yet." } @else { "No message matches." } }
        } @else {
            table.log {
                thead { tr {
                    th { "#" } th { "Date" } th { "Dir" } th { "Status" } th { "Backend" }
                    th { "Identity" } th { "Text" } th { "In reply to" }
                } }
                tbody {
                    @for m in &page.messages {
                        tr.message data-id=(m.id) {
                            td { a href={ (BASE) "/message/" (m.id) } { (m.id) } }
                            td.date { (date(m.date)) }
                            td.dir { (direction(m.direction)) }
                            td.status title=(m.status.meaning()) { (m.status.code()) " — " (m.status.meaning()) }
                            td { (m.connection.backend) }
                            td.identity { (m.connection.identity) }
                            td.text { (m.text) }
                            td.answers {
                                @if let Some(id) = m.in_response_to {
                                    a href={ (BASE) "/message/" (id) } { "#" (id) }
                                    @if let Some(text) = page.answered.get(&id) { ": " span.answered { (text) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav.pages {
            @if page.number > 1 {
                a rel="prev" href={ (BASE) "?" (log_query(query, page.number - 1)) } { "← Newer" } " "
            }
            span.page { "Page " (page.number) " of " (page.count) }
            " (" (page.total) @if query.is_empty() { " messages" } @else { " matches" } ")"
            @if page.number < page.count {
                " " a rel="next" href={ (BASE) "?" (log_query(query, page.number + 1)) } { "Older →" }
            }
            @if page.truncated {
                p.hint { "Only the newest " (super::search::SCAN_LIMIT) " messages are paged and searched; open older ones by id." }
            }
        }
    }
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Incoming => "in",
        Direction::Outgoing => "out",
    }
}

/// Kannel's name for a box protocol coding.
fn coding(coding: i32) -> &'static str {
    match coding {
        0 => "7-bit (GSM)",
        1 => "8-bit (binary)",
        2 => "UCS-2",
        _ => "undefined",
    }
}

/// The DLR mask bit's meaning.
fn dlr(mask: i32) -> &'static str {
    match mask {
        1 => "delivered",
        2 => "undelivered",
        4 => "buffered",
        8 => "accepted by the SMSC",
        16 => "rejected by the SMSC",
        _ => "other",
    }
}

/// A message's detail page.
pub fn detail(
    user: &User,
    m: &Message,
    answered: Option<&Message>,
    errors: &[DeliveryError],
    dlrs: &[DlrEvent],
) -> Markup {
    let kannel = m.kannel.as_ref();
    layout(
        &format!("Message {}", m.id),
        Some(user),
        html! {},
        html! {
            h1 { "Message " (m.id) }
            dl.detail {
                dt { "Direction" } dd { (direction(m.direction)) }
                dt { "Status" } dd #status { (m.status.code()) " — " (m.status.meaning()) }
                dt { "Backend" } dd { (m.connection.backend) }
                dt { "Identity" } dd { (m.connection.identity) }
                dt { "Address" } dd { (m.connection.address) }
                dt { "Text" } dd.text #text { (m.text) }
                dt { "Date" } dd { (date(m.date)) }
                dt { "Updated" } dd { (date(m.updated)) }
                @if let Some(t) = m.sent { dt { "Sent" } dd { (date(t)) } }
                @if let Some(t) = m.delivered { dt { "Delivered" } dd { (date(t)) } }
                @if let Some(id) = m.in_response_to {
                    dt { "In reply to" }
                    dd { a href={ (BASE) "/message/" (id) } { "#" (id) }
                        @if let Some(a) = answered { ": " span.answered { (a.text) } } }
                }
                @if let Some(x) = &m.external_id { dt { "External id" } dd { (x) } }
                dt { "Attempts" } dd { (m.attempts) }
            }
            h2 { "Kannel" }
            @if let Some(k) = kannel {
                dl.detail #kannel {
                    dt { "UUID" } dd #uuid { @if let Some(u) = k.uuid { (uuid::Uuid::from_bytes(u)) } @else { "—" } }
                    dt { "smsc_id" } dd #smsc-id { (k.smsc_id.as_deref().unwrap_or("—")) }
                    dt { "Coding" } dd #coding { (k.coding) " (" (coding(k.coding)) ")" }
                    @if let Some(s) = &k.shortcode { dt { "Shortcode / sender" } dd { (s) } }
                    @if let Some(c) = &k.charset { dt { "Charset" } dd { (c) } }
                    dt { "DLR mask" } dd { (k.dlr_mask) }
                    @if let Some(s) = &k.service { dt { "Service" } dd { (s) } }
                    @if let Some(f) = &k.foreign_id { dt { "SMSC's id" } dd { (f) } }
                }
            } @else {
                p #kannel { "Not a Kannel message (no UUID, smsc_id or coding)." }
            }
            h2 { "Delivery errors" }
            @if errors.is_empty() { p #delivery-errors { "None." } } @else {
                table #delivery-errors { thead { tr { th { "Time" } th { "What went wrong" } } }
                    tbody { @for e in errors { tr { td { (date(e.time)) } td { (e.log) } } } } }
            }
            h2 { "Delivery reports" }
            @if dlrs.is_empty() { p #dlrs { "None." } } @else {
                table #dlrs { thead { tr { th { "Time" } th { "Event" } th { "SMSC's text" } } }
                    tbody { @for d in dlrs { tr { td { (date(d.time)) } td { (d.mask) " (" (dlr(d.mask)) ")" } td { (d.text) } } } } }
            }
            @if m.direction == Direction::Incoming {
                form #reply method="post" action={ (BASE) "/reply" } {
                    h2 { "Reply" }
                    input type="hidden" name="csrf" value=(user.csrf);
                    input type="hidden" name="recipient" value=(m.connection.identity);
                    input type="hidden" name="backend" value=(m.connection.backend);
                    label { "Text " input name="reply_text" required; }
                    button type="submit" { "Send reply to " (m.connection.identity) }
                }
            }
            p { a href=(BASE) { "Back to the log" } }
        },
    )
}
