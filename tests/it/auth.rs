//! End-to-end account scenarios: register, login, me, refresh, logout; refresh-token reuse; every kind of bad
//! access token; one user against another; login rate limits; concurrent registrations of one address; the
//! privacy jobs that `DELETE /me` and `POST /me/export` put on the host's privacy queue.
//! Tokens are minted with the host's key (see `tests::mint`) so that each spoiled token differs from a good one
//! in exactly one respect, and a control token proves the minting itself is right.

use reqwest::Method;
use serde_json::{Value, json};
use tests::{Api, claims_of, mint, unique};

const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn hs256_header() -> Value {
    serde_json::from_str(HS256).unwrap_or_default()
}

async fn me(api: &Api, token: &str) -> tests::Answer {
    api.call(Method::GET, "/me", Some(token), None).await
}

fn assert_unauthorized(answer: &tests::Answer, what: &str) {
    assert_eq!(answer.status, 401, "{what}: {}", answer.text);
    assert_eq!(answer.problem_code(), Some("unauthorized"), "{what}: {}", answer.text);
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"), "{what}");
}

#[tokio::test]
async fn register_login_me_refresh_logout_is_one_complete_flow() {
    let api = Api::new();
    let local = unique("flow");
    let email = format!("  {}@Scenarios.TEST ", local.to_uppercase());
    let password = unique("pw-flow-correct-horse-");
    let registered = api.register(&email, &password).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let normalised = format!("{local}@scenarios.test").to_lowercase();
    assert_eq!(registered.json["email"], normalised.as_str());
    assert_eq!(registered.json["role"], "customer");
    assert!(!registered.text.contains(&password), "the password came back");
    assert_eq!(api.register(&normalised, &unique("pw-other-correct-")).await.status, 409);

    let user = api.sign_in(&normalised, &password).await;
    assert_eq!(user.id, registered.json["id"].as_str().unwrap_or_default());
    let shown = me(&api, &user.access).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!((shown.json["id"].as_str(), shown.json["email"].as_str()), (Some(user.id.as_str()), Some(normalised.as_str())));
    assert!(shown.json.get("password_hash").is_none() && !shown.text.contains("argon2"));

    let refreshed = api.refresh(&user.refresh).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let access = refreshed.json["access_token"].as_str().unwrap_or_default().to_owned();
    let refresh = refreshed.json["refresh_token"].as_str().unwrap_or_default().to_owned();
    assert_ne!(refresh, user.refresh, "the refresh token was not rotated");
    assert_eq!(me(&api, &access).await.status, 200);

    let logout = api.call(Method::POST, "/auth/logout", Some(&access), None).await;
    assert_eq!(logout.status, 204, "{}", logout.text);
    assert_unauthorized(&me(&api, &access).await, "an access token of an ended session");
    assert_unauthorized(&me(&api, &user.access).await, "the first access token of an ended session");
    assert_unauthorized(&api.refresh(&refresh).await, "a refresh token of an ended session");
    assert_unauthorized(&api.call(Method::POST, "/auth/logout", None, None).await, "logout without a token");
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_whole_family() {
    let api = Api::new();
    let user = api.new_user("reuse").await;
    let rotated = api.refresh(&user.refresh).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let next_refresh = rotated.json["refresh_token"].as_str().unwrap_or_default().to_owned();
    let next_access = rotated.json["access_token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(me(&api, &next_access).await.status, 200);
    // The thief replays the spent token: refused, and the family ends for the owner too.
    assert_unauthorized(&api.refresh(&user.refresh).await, "a spent refresh token");
    assert_unauthorized(&api.refresh(&next_refresh).await, "the newest refresh token of a revoked family");
    assert_unauthorized(&me(&api, &next_access).await, "an access token of a revoked family");
    // Another session of the same user is untouched, and a made-up token is refused.
    let other = api.sign_in(&user.email, &user.password).await;
    assert_eq!(me(&api, &other.access).await.status, 200);
    assert_unauthorized(&api.refresh("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await, "an unknown refresh token");
    let malformed = api.call(Method::POST, "/auth/refresh", None, Some(&json!({ "refresh_token": 42 }))).await;
    assert_eq!(malformed.status, 400, "{}", malformed.text);
    assert!(!malformed.text.contains("42"), "{}", malformed.text);
}

#[tokio::test]
async fn tampered_expired_foreign_and_unsigned_access_tokens_are_refused() {
    let api = Api::new();
    let user = api.new_user("tokens").await;
    let claims = claims_of(&user.access);
    // The control: the same claims, minted by the test with the host's key, are accepted. Without it every
    // refusal below could come from a wrong key and prove nothing.
    let control = mint(&hs256_header(), &claims);
    let answer = me(&api, &control).await;
    assert_eq!(answer.status, 200, "a token minted with the host's key was refused (is {} right?): {}", tests::SECRET_VAR, answer.text);

    let spoil = |field: &str, value: Value| {
        let mut spoiled = claims.clone();
        spoiled[field] = value;
        spoiled
    };
    let now = claims["iat"].as_i64().unwrap_or_default();
    let cases = [
        ("expired", mint(&hs256_header(), &spoil("exp", json!(now - 3600)))),
        ("not yet valid", mint(&hs256_header(), &spoil("nbf", json!(now + 3600)))),
        ("wrong audience", mint(&hs256_header(), &spoil("aud", json!("someone-else")))),
        ("wrong issuer", mint(&hs256_header(), &spoil("iss", json!("https://evil.example")))),
        ("another algorithm", mint(&json!({ "alg": "HS512", "typ": "JWT" }), &claims)),
    ];
    for (what, token) in &cases {
        assert_unauthorized(&me(&api, token).await, what);
    }

    use base64::Engine as _;
    let b64 = |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let unsigned = format!("{}.{}.", b64(&json!({ "alg": "none", "typ": "JWT" })), b64(&claims));
    tests::remember_secret(&unsigned);
    assert_unauthorized(&me(&api, &unsigned).await, "alg none");
    let parts: Vec<&str> = user.access.split('.').collect();
    let promoted = format!("{}.{}.{}", parts[0], b64(&spoil("role", json!("admin"))), parts[2]);
    assert_unauthorized(&me(&api, &promoted).await, "a payload changed without re-signing");
    let mut signature: Vec<char> = parts[2].chars().collect();
    signature[0] = if signature[0] == 'A' { 'B' } else { 'A' };
    let flipped = format!("{}.{}.{}", parts[0], parts[1], signature.into_iter().collect::<String>());
    assert_unauthorized(&me(&api, &flipped).await, "a changed signature");
    for garbage in ["", "not-a-token", "a.b.c"] {
        assert_unauthorized(&me(&api, garbage).await, "garbage");
    }
    assert_eq!(me(&api, &user.access).await.status, 200, "the genuine token stopped working");
}

#[tokio::test]
async fn a_deleted_users_tokens_are_refused_and_the_request_is_recorded() {
    let api = Api::new();
    let user = api.new_user("erase").await;
    let claims = claims_of(&user.access);

    let deleted = api.call(Method::DELETE, "/me", Some(&user.access), None).await;
    assert_eq!(deleted.status, 202, "{}", deleted.text);
    assert!(deleted.json["erasure_requested_at"].is_string() && deleted.json["deleted_at"].is_string(), "{}", deleted.text);
    assert_unauthorized(&me(&api, &user.access).await, "a deleted user's token");
    assert_unauthorized(&me(&api, &mint(&hs256_header(), &claims)).await, "a fresh token for a deleted user");
    assert_unauthorized(&api.refresh(&user.refresh).await, "a deleted user's refresh token");
    let again = api.login(&user.email, &user.password).await;
    assert_eq!((again.status, again.problem_code()), (401, Some("invalid_credentials")), "{}", again.text);
}

#[tokio::test]
async fn one_user_never_reaches_another_users_account() {
    let api = Api::new();
    let alice = api.new_user("alice").await;
    let bob = api.new_user("bob").await;
    let bobs_view = me(&api, &bob.access).await;
    assert_eq!(bobs_view.json["id"], bob.id.as_str());
    assert!(!bobs_view.text.contains(&alice.email) && !bobs_view.text.contains(&alice.id));
    // A token naming Alice but carrying Bob's session, signed with the right key, is still refused.
    let mut claims = claims_of(&bob.access);
    claims["sub"] = json!(alice.id);
    assert_unauthorized(&me(&api, &mint(&hs256_header(), &claims)).await, "Alice's id on Bob's session");
    // Bob closing "his" account closes only his.
    assert_eq!(api.call(Method::DELETE, "/me", Some(&bob.access), None).await.status, 202);
    let alices_view = me(&api, &alice.access).await;
    assert_eq!(alices_view.status, 200, "{}", alices_view.text);
    assert!(alices_view.json["deleted_at"].is_null());
    // Bob's refresh token cannot be spent as Alice's, nor hers by logging out of his.
    assert_unauthorized(&api.call(Method::POST, "/auth/logout", Some(&bob.access), None).await, "logout of a closed account");
    assert_eq!(api.refresh(&alice.refresh).await.status, 200);
}

#[tokio::test]
async fn repeated_failed_logins_are_answered_429_with_retry_after() {
    let api = Api::new();
    let user = api.new_user("limited").await;
    let unknown = format!("{}@scenarios.test", unique("nobody"));
    let wrong = api.login(&user.email, "wrong-horse-battery-staple").await;
    let missing = api.login(&unknown, "wrong-horse-battery-staple").await;
    assert_eq!((wrong.status, wrong.problem_code()), (401, Some("invalid_credentials")), "{}", wrong.text);
    assert_eq!((missing.status, &missing.json["detail"]), (wrong.status, &wrong.json["detail"]), "an unknown e-mail is told apart");
    let mut limited = None;
    for _ in 0..10 {
        let answer = api.login(&user.email, "wrong-horse-battery-staple").await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
        assert_eq!(answer.status, 401, "{}", answer.text);
    }
    let limited = limited.unwrap_or_else(|| panic!("ten more failed logins were never limited"));
    assert_eq!(limited.problem_code(), Some("rate_limited"));
    let retry_after: u64 = limited.header("retry-after").and_then(|value| value.parse().ok()).unwrap_or(0);
    assert!(retry_after >= 1, "Retry-After: {:?}", limited.header("retry-after"));
    // The right password is refused too while the account is limited: guessing gains nothing.
    assert_eq!(api.login(&user.email, &user.password).await.status, 429);
}

#[tokio::test]
async fn concurrent_registrations_of_one_address_make_exactly_one_account() {
    let api = Api::new();
    let local = unique("race");
    let attempts = (0..8).map(|n| {
        let api = api.clone();
        // Different spellings of one address, each with its own password.
        let email = if n % 2 == 0 { format!("{local}@scenarios.test") } else { format!(" {}@SCENARIOS.test", local.to_uppercase()) };
        let password = unique(&format!("pw-race-{n}-"));
        tokio::spawn(async move { (api.register(&email, &password).await, password) })
    });
    let mut created = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        let (answer, password) = attempt.await.unwrap_or_else(|error| panic!("{error}"));
        match answer.status {
            201 => created.push(password),
            409 => assert_eq!(answer.problem_code(), Some("conflict")),
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert_eq!(created.len(), 1, "registrations that succeeded: {}", created.len());
    let email = format!("{local}@scenarios.test");
    api.sign_in(&email, &created[0]).await;
}

#[tokio::test]
async fn bad_registrations_are_refused_with_the_field_named() {
    let api = Api::new();
    for (email, password, field) in [
        ("not-an-address", "long enough password", "email"),
        ("short@scenarios.test", "short", "password"),
    ] {
        let answer = api.register(email, password).await;
        assert_eq!((answer.status, answer.problem_code()), (422, Some("validation_failed")), "{}", answer.text);
        assert_eq!(answer.json["param"], field);
        assert!(!answer.text.contains(password), "{}", answer.text);
    }
    let extra = json!({ "email": "x@scenarios.test", "password": "long enough password", "role": "admin" });
    let answer = api.call(Method::POST, "/auth/register", None, Some(&extra)).await;
    assert_eq!(answer.status, 400, "an unknown field such as role is refused: {}", answer.text);
}
