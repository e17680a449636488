use super::*;

fn text(t: &str) -> Body {
    Body::Text(t.to_owned())
}

fn texts(parts: Vec<Body>) -> Vec<String> {
    parts
        .into_iter()
        .map(|p| match p {
            Body::Text(t) => t,
            Body::Binary(b) => format!("{b:?}"),
        })
        .collect()
}

fn splitting(max_messages: u32) -> Splitting<'static> {
    Splitting {
        max_messages,
        max_octets: 140,
        ..Splitting::default()
    }
}

#[test]
fn a_short_reply_is_one_part_with_header_and_footer() {
    let s = Splitting {
        header: Some("H:"),
        footer: Some(":F"),
        ..splitting(1)
    };
    assert_eq!(texts(split(&text("hello"), &s)), ["H:hello:F"]);
}

#[test]
fn max_messages_zero_sends_nothing_and_one_drops_the_rest() {
    assert!(split(&text("x"), &splitting(0)).is_empty());
    let long = "a".repeat(200);
    let parts = texts(split(&text(&long), &splitting(1)));
    assert_eq!(parts, ["a".repeat(160)]);
}

#[test]
fn long_replies_split_at_split_chars_with_the_suffix_on_all_but_the_last() {
    let long = "word ".repeat(40); // 200 characters
    let s = Splitting {
        split_chars: Some(" "),
        split_suffix: Some("+"),
        ..splitting(3)
    };
    let parts = texts(split(&text(&long), &s));
    assert_eq!(parts.len(), 2);
    // 160 - 1 for the suffix = 159: cut after the last space before it.
    assert_eq!(parts[0], format!("{}+", "word ".repeat(31)));
    assert_eq!(parts[1], "word ".repeat(9));
}

#[test]
fn gsm_extension_characters_count_twice() {
    let long = "{".repeat(81);
    let parts = texts(split(&text(&long), &splitting(2)));
    assert_eq!(parts, ["{".repeat(80), "{".to_owned()]);
}

#[test]
fn header_and_footer_take_room_from_every_part() {
    let s = Splitting {
        header: Some("12345"),
        footer: Some("67890"),
        ..splitting(2)
    };
    let parts = texts(split(&text(&"x".repeat(160)), &s));
    assert_eq!(parts[0], format!("12345{}67890", "x".repeat(150)));
    assert_eq!(parts[1], "12345xxxxxxxxxx67890");
}

#[test]
fn concatenation_joins_parts_cut_for_the_concatenation_udh() {
    let s = Splitting {
        concatenation: true,
        ..splitting(5)
    };
    let long = "y".repeat(400);
    let parts = texts(split(&text(&long), &s));
    // (140 - 6) * 8 / 7 = 153 per part: 3 parts, joined again.
    assert_eq!(parts, std::slice::from_ref(&long));
    let s = Splitting {
        concatenation: true,
        ..splitting(2)
    };
    assert_eq!(texts(split(&text(&long), &s)), ["y".repeat(306)]);
}

#[test]
fn binary_and_ucs2_count_octets() {
    let s = Splitting {
        ucs2: true,
        ..splitting(2)
    };
    let parts = texts(split(&text(&"é".repeat(80)), &s));
    assert_eq!(parts, ["é".repeat(70), "é".repeat(10)]);
    let parts = split(&Body::Binary(vec![7; 150]), &splitting(2));
    assert_eq!(
        parts,
        [Body::Binary(vec![7; 140]), Body::Binary(vec![7; 10])]
    );
}

#[test]
fn the_last_part_is_cut_to_leave_room_for_a_suffix_as_in_kannel() {
    // 159 characters fit one SMS, but the part is cut to 160 - 3 = 157
    // and the rest dropped: sms_split's behaviour.
    let s = Splitting {
        split_suffix: Some("..."),
        ..splitting(1)
    };
    let parts = texts(split(&text(&"z".repeat(159)), &s));
    assert_eq!(parts, ["z".repeat(157)]);
}
