//! What one load is: the MOs to offer and the limits of the run.

use std::time::Duration;

/// The placeholder in [`Options::text`] replaced by the MO's number.
pub const SEQ_PLACEHOLDER: &str = "{n}";

/// How the MO text is coded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextCoding {
    /// `coding` 0: 7-bit text, UTF-8 inside Kannel.
    #[default]
    SevenBit,
    /// `coding` 2: UCS-2, `msgdata` holds UTF-16BE.
    Ucs2,
}

/// One load.
#[derive(Debug, Clone)]
pub struct Options {
    /// MOs to offer (N). Their numbers run from 1 to N.
    pub messages: u32,
    /// The MO text; `{n}` becomes the MO's number. It must contain `{n}`:
    /// that is how a reply is matched to its MO.
    pub text: String,
    pub coding: TextCoding,
    /// MO `n` comes from sender `+2567720000001 + (n - 1) % senders`.
    pub senders: u32,
    /// The MOs' receiver.
    pub shortcode: String,
    /// The MOs' smsc_id.
    pub smsc: String,
    /// MOs offered and not yet acknowledged, at most (bearerbox's
    /// smsbox-max-pending).
    pub window: usize,
    /// MOs offered per second, paced evenly; `None`: as fast as the window
    /// allows.
    pub rate: Option<f64>,
    /// Send a delivered report (report_mo, dlr_mask 1) for each MT whose
    /// dlr_mask asks for bit 1.
    pub dlr: bool,
    /// Once every MO is offered, how long to wait without any progress
    /// (ack or reply) for the rest before giving up.
    pub grace: Duration,
    /// Bound on the whole run, from the start of the wait for the box.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            messages: 1000,
            text: "load test {n}".to_owned(),
            coding: TextCoding::SevenBit,
            senders: 10,
            shortcode: "5555".to_owned(),
            smsc: "fake".to_owned(),
            window: 100,
            rate: None,
            dlr: false,
            grace: Duration::from_secs(5),
            timeout: Duration::from_secs(300),
        }
    }
}

/// Options that cannot make a load.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OptionsError {
    #[error("the text must contain {SEQ_PLACEHOLDER}: replies are matched to MOs by it")]
    NoPlaceholder,
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("the rate must be a positive number of messages per second")]
    BadRate,
}

impl Options {
    /// Checks that the options make a load that can be measured.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if !self.text.contains(SEQ_PLACEHOLDER) {
            return Err(OptionsError::NoPlaceholder);
        }
        if self.messages == 0 {
            return Err(OptionsError::Zero("messages"));
        }
        if self.senders == 0 {
            return Err(OptionsError::Zero("senders"));
        }
        if self.window == 0 {
            return Err(OptionsError::Zero("window"));
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(OptionsError::BadRate);
            }
        }
        Ok(())
    }
}
