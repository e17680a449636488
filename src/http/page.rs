//! The chrome every HTML page shares, the console's and `/router/status`'s:
//! maud templates, which escape every value they insert.
//!
//! Pages load their stylesheet from the console's path and no inline
//! script or style, so the console's Content-Security-Policy can forbid
//! inline scripts altogether.

use maud::{html, Markup, PreEscaped, DOCTYPE};

/// Where the console lives, and with it the stylesheet.
pub const BASE: &str = "/router/console";

/// A whole page: `title`, the header's brand followed by `header`, extra
/// `head` elements, and `body`.
pub fn layout(title: &str, header: Markup, head: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · rapidbox" }
                link rel="stylesheet" href={ (BASE) "/console.css" };
                (head)
            }
            body {
                header {
                    a.brand href=(BASE) { "rapidbox console" }
                    (header)
                }
                main { (body) }
            }
        }
    }
}

/// Markup as a string, for responses.
pub fn render(markup: Markup) -> String {
    let PreEscaped(s) = markup;
    s
}
