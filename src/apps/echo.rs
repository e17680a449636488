//! `echo`: answers every message with its template (by default `%a`, the
//! message's words).

use crate::config::EchoConfig;
use crate::router::{App, AppFuture, Incoming};

pub struct Echo {
    name: String,
    config: EchoConfig,
}

impl Echo {
    pub fn new(name: &str, config: EchoConfig) -> Echo {
        Echo {
            name: name.to_owned(),
            config,
        }
    }
}

impl App for Echo {
    fn name(&self) -> &str {
        &self.name
    }

    fn handle<'a>(&'a self, msg: &'a mut Incoming) -> AppFuture<'a, bool> {
        let text = super::reply(&self.config.template, msg);
        // An empty reply is no reply: SMSCs refuse empty messages.
        let handled = !text.is_empty();
        if handled {
            msg.respond(text);
        }
        Box::pin(std::future::ready(Ok(handled)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::tests::incoming;
    use crate::template::Template;

    #[tokio::test]
    async fn echoes_the_words_squeezed() {
        let app = Echo::new("echo", EchoConfig::default());
        let mut msg = incoming("  hello    world ");
        assert!(app.handle(&mut msg).await.unwrap());
        assert_eq!(msg.responses[0].text, "hello world");
    }

    #[tokio::test]
    async fn an_empty_rendering_sends_nothing() {
        let config = EchoConfig {
            template: Template::compile("%s").unwrap(),
        };
        let app = Echo::new("echo", config);
        let mut msg = incoming("");
        assert!(!app.handle(&mut msg).await.unwrap());
        assert!(msg.responses.is_empty());
    }
}
