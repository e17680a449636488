use super::*;

fn service(keyword: &str, text: &str) -> SmsService {
    SmsService {
        keyword: Some(keyword.into()),
        text: Some(text.into()),
        ..SmsService::new()
    }
}

fn rules(services: &[SmsService]) -> Vec<Rules> {
    services
        .iter()
        .map(|s| Rules::compile(s, s.text.as_deref().or(s.get_url.as_deref()).unwrap()).unwrap())
        .collect()
}

fn mo(text: &str) -> Candidate<'_> {
    Candidate {
        text,
        sender: "+256772123456",
        receiver: "8500",
        smsc_id: Some("fake"),
        account: None,
    }
}

#[test]
fn keywords_match_ignoring_case_and_leading_spaces_and_aliases_too() {
    let mut help = service("help", "h");
    help.aliases = vec!["aide".into()];
    let r = rules(&[help, service("default", "d")]);
    assert_eq!(select(&r, &mo("HELP")), Some(0));
    assert_eq!(select(&r, &mo("  Aide")), Some(0));
    assert_eq!(select(&r, &mo("other")), Some(1));
}

#[test]
fn the_keyword_is_not_anchored_at_its_end_as_in_smsbox() {
    let r = rules(&[service("help", "h")]);
    assert_eq!(select(&r, &mo("helpme")), Some(0));
    assert_eq!(select(&r, &mo("xhelp")), None);
}

#[test]
fn the_number_of_words_must_fit_the_pattern_unless_catch_all() {
    let one_arg = service("add", "added %s");
    let mut any = service("add", "x");
    any.catch_all = true;
    let r = rules(&[one_arg, service("default", "d")]);
    assert_eq!(select(&r, &mo("add milk")), Some(0));
    assert_eq!(select(&r, &mo("add")), Some(1), "too few words");
    assert_eq!(select(&r, &mo("add milk eggs")), Some(1), "too many");
    let r = rules(&[any]);
    assert_eq!(select(&r, &mo("add a b c")), Some(0));
    let r = rules(&[service("say", "%s then %a")]);
    assert_eq!(select(&r, &mo("say a b c")), Some(0), "%a takes the rest");
    assert_eq!(select(&r, &mo("say")), None);
}

#[test]
fn a_keyword_regex_is_case_sensitive_and_unanchored() {
    let mut s = service("x", "r");
    s.keyword = None;
    s.keyword_regex = Some("^[0-9]+$".into());
    let r = rules(&[s]);
    assert_eq!(select(&r, &mo("12345")), Some(0));
    assert_eq!(select(&r, &mo("12a")), None);
}

#[test]
fn accepted_smsc_and_prefix_lists_pick_among_services() {
    let mut only_other = service("news", "a");
    only_other.accepted_smsc = vec!["other".into()];
    let mut uganda = service("news", "b");
    uganda.allowed_prefix = vec!["+256".into()];
    let r = rules(&[only_other, uganda.clone()]);
    assert_eq!(select(&r, &mo("news")), Some(1));

    let mut kenya = service("news", "k");
    kenya.allowed_prefix = vec!["+254".into(), "+255".into()];
    let mut denied = service("news", "d");
    denied.denied_prefix = vec!["+256".into()];
    let r = rules(&[kenya, denied, service("default", "x")]);
    assert_eq!(select(&r, &mo("news")), Some(2));
}

#[test]
fn allowed_and_denied_together_refuse_only_outside_allowed_and_inside_denied() {
    let mut s = service("a", "x");
    s.allowed_prefix = vec!["+2567".into()];
    s.denied_prefix = vec!["+256".into()];
    let r = rules(&[s]);
    assert_eq!(select(&r, &mo("a")), Some(0), "+2567... is allowed");
    let other = Candidate {
        sender: "+2564",
        ..mo("a")
    };
    assert_eq!(select(&r, &other), None);
    let elsewhere = Candidate {
        sender: "+1555",
        ..mo("a")
    };
    assert_eq!(select(&r, &elsewhere), Some(0), "neither list: allowed");
}

#[test]
fn receiver_prefixes_and_their_regexes() {
    let mut s = service("a", "x");
    s.allowed_receiver_prefix = vec!["85".into()];
    assert_eq!(select(&rules(&[s.clone()]), &mo("a")), Some(0));
    s.allowed_receiver_prefix = vec!["99".into()];
    assert_eq!(select(&rules(&[s]), &mo("a")), None);
    // smsbox 1.4.5 refuses when the denied receiver regex does not match.
    let mut d = service("a", "x");
    d.denied_receiver_prefix_regex = Some("^85".into());
    assert_eq!(select(&rules(&[d.clone()]), &mo("a")), Some(0));
    d.denied_receiver_prefix_regex = Some("^99".into());
    assert_eq!(select(&rules(&[d]), &mo("a")), None);
}

#[test]
fn white_and_black_lists_compare_numbers_as_numhash_does() {
    let mut white = service("a", "x");
    white.white_list = Some(vec!["00256772123456".into()]);
    assert_eq!(select(&rules(&[white.clone()]), &mo("a")), Some(0));
    white.white_list = Some(vec!["111".into()]);
    assert_eq!(select(&rules(&[white]), &mo("a")), None);
    let mut black = service("a", "x");
    black.black_list = vec!["256772123456".into()];
    assert_eq!(select(&rules(&[black]), &mo("a")), None);
    let mut black = service("a", "x");
    black.black_list_regex = Some("^\\+256".into());
    assert_eq!(select(&rules(&[black]), &mo("a")), None);
}

#[test]
fn a_default_service_is_taken_only_when_allowed_and_after_every_keyword() {
    let mut d = service("default", "d");
    d.accepted_smsc = vec!["other".into()];
    let r = rules(&[d, service("default", "e"), service("x", "y")]);
    assert_eq!(select(&r, &mo("x")), Some(2));
    assert_eq!(select(&r, &mo("z")), Some(1));
}

#[test]
fn numbers_are_keyed_like_strtoll_on_the_last_19_characters() {
    assert_eq!(number_key("+4912"), 4912);
    assert_eq!(number_key("004912"), 4912);
    assert_eq!(number_key("abc"), 0);
    assert_eq!(number_key("12345678901234567890123"), 5678901234567890123);
}

#[test]
fn keywords_ignore_the_case_of_ascii_letters_only_as_kannels_c_locale() {
    let r = rules(&[
        service("привет", "p"),
        service("hi", "h"),
        service("default", "d"),
    ]);
    assert_eq!(select(&r, &mo("привет")), Some(0));
    assert_eq!(
        select(&r, &mo("Привет")),
        Some(2),
        "REG_ICASE in the C locale does not fold Cyrillic"
    );
    assert_eq!(select(&r, &mo("HI")), Some(1));
    // A keyword that could match bytes outside UTF-8 without Unicode
    // still compiles (and folds as Unicode does).
    assert_eq!(select(&rules(&[service("h.", "x")]), &mo("HÉ")), Some(0));
}
