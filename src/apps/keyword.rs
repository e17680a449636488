//! `keyword`: a reply per keyword (the first word, any case), and a
//! `default` reply, in the router's default phase, when no app handled the
//! message.

use crate::config::KeywordConfig;
use crate::router::{App, AppFuture, Incoming};
use crate::template::Template;

pub struct Keyword {
    name: String,
    config: KeywordConfig,
}

impl Keyword {
    pub fn new(name: &str, config: KeywordConfig) -> Keyword {
        Keyword {
            name: name.to_owned(),
            config,
        }
    }
}

impl App for Keyword {
    fn name(&self) -> &str {
        &self.name
    }

    fn handle<'a>(&'a self, msg: &'a mut Incoming) -> AppFuture<'a, bool> {
        let rule = self.config.rule(super::first_word(msg));
        Box::pin(std::future::ready(Ok(answer(rule, msg))))
    }

    fn default<'a>(&'a self, msg: &'a mut Incoming) -> AppFuture<'a, bool> {
        let reply = self.config.default.as_ref();
        Box::pin(std::future::ready(Ok(answer(reply, msg))))
    }
}

/// Responds with `template`, if there is one; true when it did.
fn answer(template: Option<&Template>, msg: &mut Incoming) -> bool {
    let Some(template) = template else {
        return false;
    };
    let text = super::reply(template, msg);
    msg.respond(text);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::tests::incoming;

    fn app() -> Keyword {
        let mut config = KeywordConfig {
            default: Some(Template::compile("Send JOIN or HELP").unwrap()),
            ..KeywordConfig::default()
        };
        config.rules.insert(
            "join".into(),
            Template::compile("Welcome %s, from %p").unwrap(),
        );
        Keyword::new("keyword", config)
    }

    #[tokio::test]
    async fn the_first_word_picks_the_rule_in_any_case() {
        let mut msg = incoming("JoIn Kampala now");
        assert!(app().handle(&mut msg).await.unwrap());
        assert_eq!(msg.responses[0].text, "Welcome Kampala, from +256772123456");
    }

    #[tokio::test]
    async fn no_rule_leaves_the_message_to_the_default_phase() {
        let mut msg = incoming("what?");
        let app = app();
        assert!(!app.handle(&mut msg).await.unwrap());
        assert!(msg.responses.is_empty());
        assert!(app.default(&mut msg).await.unwrap());
        assert_eq!(msg.responses[0].text, "Send JOIN or HELP");
    }
}
