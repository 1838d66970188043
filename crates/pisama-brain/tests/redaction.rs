//! Redaction recall and false positives on a corpus written for this test. Every secret below
//! is fake: made-up values in the real formats.

#![allow(
    clippy::print_stdout,
    reason = "the test reports recall and false positives"
)]

use pisama_brain::redact::Redactor;

/// (description, text containing exactly one secret, the secret).
const SECRETS: &[(&str, &str, &str)] = &[
    (
        "aws access key id",
        "export AWS_ACCESS_KEY_ID=AKIAZ7Q3N5X2L8K4P1RT",
        "AKIAZ7Q3N5X2L8K4P1RT",
    ),
    (
        "aws temp key id",
        "creds: ASIAY4HBN7QZ2XW8K3LM in the session",
        "ASIAY4HBN7QZ2XW8K3LM",
    ),
    (
        "aws secret",
        "aws_secret_access_key = kQ8vN3xR7tB2mW9pL4zH6yC1dF5gJ0sA8eU3iO7n",
        "kQ8vN3xR7tB2mW9pL4zH6yC1dF5gJ0sA8eU3iO7n",
    ),
    (
        "gcp api key",
        "maps key AIzaSyD4x8Qw2Lm9Np3Rt7Vb1Kc5Hj6Gf0Zs8Ye",
        "AIzaSyD4x8Qw2Lm9Np3Rt7Vb1Kc5Hj6Gf0Zs8Ye",
    ),
    (
        "gcp oauth secret",
        "client_id ok, 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 is the secret",
        "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",
    ),
    (
        "gcp oauth token",
        "Authorization uses ya29.a0AfB_byC7dE9fG2hI4jK6lM8nO0pQ3rS5tU7vW9xY1z",
        "ya29.a0AfB_byC7dE9fG2hI4jK6lM8nO0pQ3rS5tU7vW9xY1z",
    ),
    (
        "azure storage key",
        "DefaultEndpointsProtocol=https;AccountName=demo;AccountKey=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG9mcmVkcGx1Z2h4eXp6eTEyMzQ1Njc4OTBhYmNkZWZnaA==;EndpointSuffix=core.windows.net",
        "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG9mcmVkcGx1Z2h4eXp6eTEyMzQ1Njc4OTBhYmNkZWZnaA==",
    ),
    (
        "azure client secret",
        "AZURE_CLIENT_SECRET value: Xy78Q~aB3cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3w",
        "Xy78Q~aB3cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3w",
    ),
    (
        "azure sas",
        "https://demo.blob.core.windows.net/c/f.txt?sv=2022-11-02&sp=r&sig=Qm9ndXNTaWduYXR1cmVGb3JUZXN0aW5nT25seTEyMzQ1Ng%3D%3D",
        "Qm9ndXNTaWduYXR1cmVGb3JUZXN0aW5nT25seTEyMzQ1Ng%3D%3D",
    ),
    (
        "github pat classic",
        "git clone https://github.com/x/y using ghp_R4nd0mT0k3nF0rT3st1ngPurp0s3s0nly12",
        "ghp_R4nd0mT0k3nF0rT3st1ngPurp0s3s0nly12",
    ),
    (
        "github oauth",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a was leaked",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",
    ),
    (
        "github fine-grained",
        "token github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345 set",
        "github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
    ),
    (
        "github app",
        "installation ghs_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8B used",
        "ghs_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8B",
    ),
    (
        "gitlab pat",
        "CI uses glpat-x7Yz2Ab9Cd4Ef6Gh8Ij0K to push",
        "glpat-x7Yz2Ab9Cd4Ef6Gh8Ij0K",
    ),
    (
        "gitlab runner",
        "register with glrt-Qw3Er5Ty7Ui9Op1As3Df5G",
        "glrt-Qw3Er5Ty7Ui9Op1As3Df5G",
    ),
    (
        "slack bot",
        "SLACK_BOT=xoxb-2048-4096-Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op",
        "xoxb-2048-4096-Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op",
    ),
    (
        "slack user",
        "old token xoxp-1111-2222-3333-a1b2c3d4e5f6a7b8c9d0 revoked?",
        "xoxp-1111-2222-3333-a1b2c3d4e5f6a7b8c9d0",
    ),
    (
        "slack webhook",
        "post to https://hooks.slack.com/services/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 daily",
        "https://hooks.slack.com/services/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",
    ),
    (
        "openai key",
        "OPENAI_API_KEY is sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90",
        "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90",
    ),
    (
        "openai legacy",
        "use sk-4fG7hJ9kL2mN5pQ8rS1tV3wX6yZ0aB2cD4eF6gH8 for tests",
        "sk-4fG7hJ9kL2mN5pQ8rS1tV3wX6yZ0aB2cD4eF6gH8",
    ),
    (
        "anthropic key",
        "claude: sk-ant-api03-Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7-AbCdEf",
        "sk-ant-api03-Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7-AbCdEf",
    ),
    (
        "stripe live",
        "STRIPE=sk_live_51Hx8Yz2Ab4Cd6Ef8Gh0Ij2Kl",
        "sk_live_51Hx8Yz2Ab4Cd6Ef8Gh0Ij2Kl",
    ),
    (
        "npm token",
        "//registry.npmjs.org/:_authToken=npm_Ab3De5Gh7Jk9Mn1Pq3St5Vw7Yz9Bc1Ef3Hi5",
        "npm_Ab3De5Gh7Jk9Mn1Pq3St5Vw7Yz9Bc1Ef3Hi5",
    ),
    (
        "pypi token",
        "password: pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmdoLTEyMzQtNTY3OC05MGFiLWNkZWYxMjM0NTY3OAACKlszLCJhYmMiXQ",
        "pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmdoLTEyMzQtNTY3OC05MGFiLWNkZWYxMjM0NTY3OAACKlszLCJhYmMiXQ",
    ),
    (
        "huggingface",
        "HF hub via 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",
        "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",
    ),
    (
        "sendgrid",
        "mail key 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",
        "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",
    ),
    (
        "jwt",
        "Bearer-less jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ.Sfl5KxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ.Sfl5KxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ),
    (
        "pem rsa",
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq8fakefakefakefake\nQWxhZGRpbjpvcGVuIHNlc2FtZQ==\n-----END RSA PRIVATE KEY-----\nend",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq8fakefakefakefake\nQWxhZGRpbjpvcGVuIHNlc2FtZQ==\n-----END RSA PRIVATE KEY-----",
    ),
    (
        "pem openssh",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----",
    ),
    (
        "postgres url",
        "DATABASE_URL=postgres://app:Tr0ub4dor-3@db.internal:5432/app",
        "Tr0ub4dor-3",
    ),
    (
        "mongodb url",
        "mongodb+srv://admin:s3cr3tPassw0rd@cluster0.example.mongodb.net/test",
        "s3cr3tPassw0rd",
    ),
    (
        "redis url",
        "cache at redis://default:9fK2mQ7xL4@redis.local:6379",
        "9fK2mQ7xL4",
    ),
    (
        "password assignment",
        "config: password=Hunter2isMyPassw0rd!",
        "Hunter2isMyPassw0rd!",
    ),
    (
        "yaml secret",
        "client_secret: 8d7F6s5A4q3W2e1R0tYuIoP",
        "8d7F6s5A4q3W2e1R0tYuIoP",
    ),
    (
        "api key assignment",
        "API_KEY = \"a81bc81b-dead-4e5d-abff-90865d1e13b1x\"",
        "a81bc81b-dead-4e5d-abff-90865d1e13b1x",
    ),
    (
        "bearer header",
        "curl -H 'Authorization: Bearer 3fH8kL2pQ9xR5tZ7wB1nM4vC6yD0sG' https://api",
        "3fH8kL2pQ9xR5tZ7wB1nM4vC6yD0sG",
    ),
    (
        "twilio key",
        "twilio SKa1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6 in env",
        "SKa1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
    ),
    (
        "high entropy",
        "the signing value is Zx8Qw3Er6Ty9Ui2Op5As8Df1Gh4Jk7Lz0Xc3Vb6Nm9",
        "Zx8Qw3Er6Ty9Ui2Op5As8Df1Gh4Jk7Lz0Xc3Vb6Nm9",
    ),
];

/// Texts with nothing secret in them that look like secrets.
const LOOKALIKES: &[&str] = &[
    "Trace id 550e8400-e29b-41d4-a716-446655440000 failed at step 3.",
    "Fixed in commit 3f2a9c1b7d4e8f0a6c5b2d1e9f8a7b6c5d4e3f2a (see PR 42).",
    "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "Record 01JDQ3K8Z6Q2W7X9Y4T5R1M0AB supersedes 01JD9ABCDEFGHJKMNPQRSTVWXY.",
    "```html\n<img src=\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\">\n```",
    "```\niVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\n```",
    "Set the password with `export DB_PASSWORD=$DB_PASSWORD` from the vault.",
    "password: <your-password-here>",
    "token = ${GITHUB_TOKEN}",
    "api_key: changeme",
    "The token expires after an hour; refresh it with the CLI.",
    "See crates/pisama-brain/src/index.rs and crates/pisama-trace/src/adapters/otel_genai.rs",
    "Use https://docs.example.com/guide/getting-started?tab=linux#install",
    "Connection string postgres://app@localhost:5432/app has no password.",
    "Run `cargo nextest run --workspace --all-features` before pushing.",
    "The file is at /home/alice/projects/pisama/target/debug/build/tantivy-6f1d2c3b4a5e6f70/out",
    "uuid without dashes 550e8400e29b41d4a716446655440000 is an id",
    "lockfile checksum = \"ad1ebacf6bc124b741ffbfb088f9835cb55e1e2ff57e182e9219e3efa1377b97\"",
    "A sk-style prefix in prose: the sk-learn library is not a key.",
    "ThisIsAVeryLongCamelCaseIdentifierNameWithoutDigits in the code",
    "The AKIA prefix marks AWS access keys; ours are in the vault.",
    "eyJ is how base64 JSON starts, e.g. in JWT headers.",
];

fn redactor() -> Redactor {
    Redactor::new(b"corpus-key", Vec::new(), Vec::new())
}

#[test]
fn secrets_are_redacted_and_lookalikes_are_not() {
    assert!(SECRETS.len() >= 30);
    let r = redactor();
    let mut caught = 0;
    let mut missed = Vec::new();
    for (what, text, secret) in SECRETS {
        assert!(text.contains(secret), "{what}: corpus error");
        let mut t = (*text).to_owned();
        let f = r.redact(&mut t);
        if f.count() > 0 && !t.contains(secret) {
            caught += 1;
        } else {
            missed.push(format!("{what}: {t}"));
        }
    }
    let mut false_positives = Vec::new();
    for text in LOOKALIKES {
        let mut t = (*text).to_owned();
        let f = r.redact(&mut t);
        if f.count() > 0 {
            false_positives.push(format!("{:?} → {t}", f.rules()));
        }
    }
    println!(
        "redaction recall: {caught}/{} secrets; false positives: {}/{} look-alikes",
        SECRETS.len(),
        false_positives.len(),
        LOOKALIKES.len()
    );
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
    assert!(
        false_positives.is_empty(),
        "false positives:\n{}",
        false_positives.join("\n")
    );
}

#[test]
fn same_secret_maps_to_the_same_tag_across_texts() {
    let r = redactor();
    let mut a = "first AKIAZ7Q3N5X2L8K4P1RT".to_owned();
    let mut b = "second mention: AKIAZ7Q3N5X2L8K4P1RT!".to_owned();
    r.redact(&mut a);
    r.redact(&mut b);
    let tag = |s: &str| s[s.find("[REDACTED").unwrap()..=s.find(']').unwrap()].to_owned();
    assert_eq!(tag(&a), tag(&b));
    assert!(tag(&a).starts_with("[REDACTED:aws_access_key:"));
}
