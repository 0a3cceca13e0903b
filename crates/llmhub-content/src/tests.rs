use super::*;
use proptest::prelude::*;

fn policy(yaml: &str) -> ContentPolicy {
    let cfg: ContentConfig = serde_yaml_ng::from_str(yaml).expect("config parses");
    ContentPolicy::new(&cfg, "processors.genai.content").expect("policy compiles")
}

fn kept(p: &ContentPolicy, key: &str, value: &str) -> String {
    match p.string(key, value, &mut Tally::default()) {
        Verdict::Keep(v) => v.into_owned(),
        Verdict::Drop => panic!("{key}: dropped"),
    }
}

#[test]
fn by_default_content_is_dropped_and_metadata_kept() {
    let p = ContentPolicy::default();
    let mut t = Tally::default();
    assert_eq!(
        p.string("gen_ai.input.messages", "[{\"role\":\"user\"}]", &mut t),
        Verdict::Drop
    );
    assert_eq!(
        p.string("llm.input_messages.0.message.content", "hi", &mut t),
        Verdict::Drop
    );
    assert_eq!(kept(&p, "gen_ai.request.model", "gpt-4o"), "gpt-4o");
    assert!(p.drops_event("gen_ai.content.prompt"));
    assert!(!p.drops_event("exception"));
    assert!(p.changes_spans());
    assert!(p.touches("input.value") && !p.touches("gen_ai.usage.input_tokens"));
}

#[test]
fn captured_content_without_rules_is_kept_as_is() {
    let p = policy("capture: true");
    assert!(!p.changes_spans());
    assert!(!p.drops_event("gen_ai.content.prompt"));
    assert_eq!(kept(&p, "input.value", "mail me at a@b.io"), "mail me at a@b.io");
}

const RULES: &str = r#"
capture: true
hash_salt: pepper
redact:
  - { builtin: email, action: mask }
  - { builtin: phone, action: mask }
  - { builtin: card, action: mask }
  - { builtin: api_key, action: hash }
  - { pattern: 'ACME-[0-9]{6}', name: ticket, action: hash }
  - { pattern: 'TOP SECRET', action: drop }
  - { keys: ['user.*', 'enduser.id'], action: hash, name: user }
"#;

#[test]
fn worked_examples_of_each_rule() {
    let p = policy(RULES);
    let k = "gen_ai.input.messages";
    assert_eq!(
        kept(&p, k, "write to jane.doe+x@mail.example.co.uk today"),
        "write to [REDACTED:email] today"
    );
    assert_eq!(
        kept(&p, k, "call +14155552671 or (415) 555-2671"),
        "call [REDACTED:phone] or [REDACTED:phone]"
    );
    // A card number passing the Luhn check is masked, one failing it is not a card.
    assert_eq!(kept(&p, k, "card 4111 1111 1111 1111 ok"), "card [REDACTED:card] ok");
    assert_eq!(kept(&p, k, "order 1234 5678 9012 3456"), "order 1234 5678 9012 3456");
    // Keys are hashed, the same key to the same hash (salted).
    let a = kept(&p, k, "key sk-proj-abcdefghijklmnopqrstuvwx1234");
    assert!(
        a.starts_with("key api_key:sha256:") && a.len() == "key api_key:sha256:".len() + 16,
        "{a}"
    );
    assert_eq!(a, kept(&p, "ai.prompt", "key sk-proj-abcdefghijklmnopqrstuvwx1234"));
    assert_ne!(
        a,
        kept(
            &policy(&RULES.replace("pepper", "salt")),
            k,
            "key sk-proj-abcdefghijklmnopqrstuvwx1234"
        )
    );
    assert!(kept(&p, k, "AKIAIOSFODNN7EXAMPLE").starts_with("api_key:sha256:"));
    assert!(kept(&p, k, "ticket ACME-123456").starts_with("ticket ticket:sha256:"));
    // drop removes the whole attribute.
    assert_eq!(p.string(k, "this is TOP SECRET", &mut Tally::default()), Verdict::Drop);
    // Rules apply to content, or to the keys they name.
    assert_eq!(kept(&p, "gen_ai.request.model", "a@b.io"), "a@b.io");
    assert!(kept(&p, "user.email", "a@b.io").starts_with("user:sha256:"));
    assert!(kept(&p, "enduser.id", "42").starts_with("user:sha256:"));
    assert_eq!(kept(&p, "enduser.idx", "42"), "42");
    // Counting.
    let mut t = Tally::default();
    let _ = p.string(k, "a@b.io, c@d.io, +14155552671", &mut t);
    assert_eq!(t.redacted, vec![("email".to_owned(), 2), ("phone".to_owned(), 1)]);
}

#[test]
fn bad_rules_are_errors_naming_the_rule() {
    let err = |yaml: &str| {
        let cfg: ContentConfig = serde_yaml_ng::from_str(yaml).expect("parses");
        ContentPolicy::new(&cfg, "processors.genai.content")
            .expect_err("refused")
            .join("; ")
    };
    assert!(err("capture: true\nredact: [{ pattern: '(', action: mask }]")
        .starts_with("processors.genai.content.redact[0].pattern: not a valid regular expression"));
    assert!(err("capture: true\nredact: [{ pattern: 'a*', action: mask }]").contains("matches the empty string"));
    assert!(
        err("capture: true\nredact: [{ builtin: email, pattern: x, action: mask }]")
            .contains("redact[0]: give builtin or pattern, not both")
    );
    assert!(err("capture: true\nredact: [{ action: mask }]").contains("redact[0]: a rule without builtin or pattern"));
    assert!(err("capture: true\nredact: [{ keys: ['*'], action: drop }]").contains("would match every attribute"));
    assert!(err("redact: [{ builtin: email, action: mask }]").contains("set processors.genai.content.capture: true"));
    assert!(
        serde_yaml_ng::from_str::<ContentConfig>("capture: true\nredact: [{ builtin: ssn, action: mask }]").is_err()
    );
    assert!(
        serde_yaml_ng::from_str::<ContentConfig>("capture: true\nredact: [{ builtin: email, action: blur }]").is_err()
    );
}

#[test]
fn the_salt_is_never_printed() {
    let cfg: ContentConfig = serde_yaml_ng::from_str("capture: true\nhash_salt: s3cr3t").expect("parses");
    let printed = serde_yaml_ng::to_string(&cfg).expect("prints");
    assert!(
        !printed.contains("s3cr3t") && printed.contains("<redacted>"),
        "{printed}"
    );
    assert!(!format!("{:?}", ContentPolicy::new(&cfg, "c").expect("policy")).contains("s3cr3t"));
    assert!(!format!("{cfg:?}").contains("s3cr3t"));
}

#[test]
fn luhn() {
    assert!(luhn_valid("4111111111111111"));
    assert!(luhn_valid("5500-0000-0000-0004"));
    assert!(!luhn_valid("4111111111111112"));
    assert!(!luhn_valid("411111111111"));
}

proptest! {
    /// Without capture, a content key's value never survives and a metadata key's is untouched.
    #[test]
    fn default_policy(value in ".{0,64}", n in 0u32..20) {
        let p = ContentPolicy::default();
        let mut t = Tally::default();
        prop_assert_eq!(p.string(&format!("gen_ai.prompt.{n}.content"), &value, &mut t), Verdict::Drop);
        prop_assert_eq!(p.string("gen_ai.response.id", &value, &mut t), Verdict::Keep(Cow::Borrowed(value.as_str())));
    }

    /// An e-mail address anywhere in captured content is masked, and the text around it kept.
    #[test]
    fn emails_are_masked(before in "[a-z ]{0,20}", user in "[a-z0-9._]{1,12}", domain in "[a-z]{1,10}", tld in "[a-z]{2,4}", after in "[a-z ]{0,20}") {
        let p = policy("capture: true\nredact: [{ builtin: email, action: mask }]");
        let email = format!("{user}@{domain}.{tld}");
        let out = kept(&p, "output.value", &format!("{before} {email} {after}"));
        prop_assert!(!out.contains(&email), "{}", out);
        prop_assert_eq!(out, format!("{before} [REDACTED:email] {after}"));
    }

    /// Every valid card number, written with or without separators, is masked.
    #[test]
    fn cards_are_masked(body in proptest::collection::vec(0u32..10, 15), sep in prop_oneof![Just(""), Just(" "), Just("-")]) {
        // Complete the Luhn check digit.
        let mut digits = body.clone();
        for check in 0..10 {
            digits.push(check);
            let s: String = digits.iter().map(|d| char::from_digit(*d, 10).unwrap_or('0')).collect();
            if luhn_valid(&s) { break; }
            digits.pop();
        }
        let written: Vec<String> = digits.chunks(4).map(|c| c.iter().map(|d| char::from_digit(*d, 10).unwrap_or('0')).collect()).collect();
        let card = written.join(sep);
        let p = policy("capture: true\nredact: [{ builtin: card, action: mask }]");
        prop_assert_eq!(kept(&p, "input.value", &format!("pay {card} now")), "pay [REDACTED:card] now");
    }
}
