//! The HTTP side: chat-completion requests to the configured endpoint through async-openai.
//!
//! - Base URL and key are always set explicitly, and the organisation and project ids are
//!   cleared: `OpenAIConfig::new()` would otherwise pick up `OPENAI_BASE_URL`,
//!   `OPENAI_API_KEY`, `OPENAI_ORG_ID` and `OPENAI_PROJECT_ID` from the environment.
//! - The reqwest client has a connect timeout and a per-request timeout (reqwest has none by
//!   default). Timeouts are not retried: a slow model stays slow.
//! - 429, 5xx and connection errors are retried `max_retries` times by async-openai's retry
//!   layer (exponential backoff from 100 ms, capped at 8 s, honouring `Retry-After`).

use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::middleware::retry::OpenAIRetryLayer;
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequest, CreateChatCompletionRequestArgs, ResponseFormat,
    ResponseFormatJsonSchema,
};
use serde_json::Value;
use tower_layer::Layer as _;

use crate::error::{CallError, ConfigError};
use crate::prompt::Messages;
use crate::settings::{ResponseMode, Settings, TokenLimitField};

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub(crate) content: String,
    /// Reported by the endpoint, when it reports usage.
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
}

/// A chat-completion request, built once: its JSON is what the dry run prints and what the
/// cache key hashes, and it is what is sent.
pub(crate) fn request(
    settings: &Settings,
    messages: &Messages,
    schema: (&str, Value),
) -> Result<CreateChatCompletionRequest, String> {
    let mut args = CreateChatCompletionRequestArgs::default();
    args.model(settings.model.clone())
        .messages(vec![
            ChatCompletionRequestSystemMessage::from(messages.system.as_str()).into(),
            ChatCompletionRequestUserMessage::from(messages.user.as_str()).into(),
        ])
        .temperature(settings.temperature);
    match settings.token_limit_field {
        TokenLimitField::MaxCompletionTokens => {
            args.max_completion_tokens(settings.max_output_tokens);
        }
        TokenLimitField::MaxTokens => {
            #[allow(
                deprecated,
                reason = "most OpenAI-compatible servers read `max_tokens`; OpenAI's reasoning models need the other field, which the config selects"
            )]
            args.max_tokens(settings.max_output_tokens);
        }
    }
    match settings.response_format {
        ResponseMode::JsonSchema => {
            args.response_format(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    name: schema.0.to_owned(),
                    description: None,
                    schema: schema.1,
                    strict: Some(true),
                },
            });
        }
        ResponseMode::JsonObject => {
            args.response_format(ResponseFormat::JsonObject);
        }
        ResponseMode::None => {}
    }
    args.build().map_err(|e| e.to_string())
}

/// A client for one endpoint.
pub(crate) struct Endpoint {
    client: async_openai::Client<OpenAIConfig>,
    timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").finish_non_exhaustive()
    }
}

impl Endpoint {
    pub(crate) fn new(settings: &Settings) -> Result<Endpoint, ConfigError> {
        // rustls needs a process-wide crypto provider; ring builds without a C toolchain step
        // as long as aws-lc. A second install (another Judge in the process) is a no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Local servers need a key in the header but ignore it.
        let key = settings
            .api_key
            .as_ref()
            .map_or("no-key", |k| k.expose())
            .to_owned();
        let mut config = OpenAIConfig::new()
            .with_api_base(settings.base_url.clone())
            .with_api_key(key)
            .with_org_id("")
            .with_project_id("");
        for (name, value) in &settings.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                ConfigError::Invalid {
                    field: "headers",
                    message: format!("{name:?}: {e}"),
                }
            })?;
            config =
                config
                    .with_header(name, value.as_str())
                    .map_err(|e| ConfigError::Invalid {
                        field: "headers",
                        message: e.to_string(),
                    })?;
        }
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        let service = OpenAIRetryLayer::new(settings.max_retries as usize)
            .layer(ReqwestService::new(http.clone()));
        let client = async_openai::Client::build(http, config).with_http_service(service);
        Ok(Endpoint {
            client,
            timeout: settings.timeout,
        })
    }

    /// Sends one request. An overall deadline (every attempt's timeout plus backoff) bounds
    /// what retries can add.
    pub(crate) async fn send(
        &self,
        request: CreateChatCompletionRequest,
        max_retries: u32,
    ) -> Result<Reply, CallError> {
        let deadline =
            self.timeout * (max_retries + 1) + Duration::from_secs(10 * u64::from(max_retries));
        let chat = self.client.chat();
        let response = match tokio::time::timeout(deadline, chat.create(request)).await {
            Err(_) => return Err(CallError::Timeout),
            Ok(Err(e)) => return Err(call_error(e)),
            Ok(Ok(r)) => r,
        };
        let choice = response.choices.into_iter().next().ok_or_else(|| {
            CallError::Transport("the endpoint answered with no choices".to_owned())
        })?;
        let content = choice
            .message
            .content
            .or(choice.message.refusal.map(|r| format!("refused: {r}")))
            .unwrap_or_default();
        Ok(Reply {
            content,
            input_tokens: response.usage.as_ref().map(|u| u64::from(u.prompt_tokens)),
            output_tokens: response
                .usage
                .as_ref()
                .map(|u| u64::from(u.completion_tokens)),
        })
    }
}

fn call_error(e: OpenAIError) -> CallError {
    match e {
        OpenAIError::Reqwest(e) if e.is_timeout() => CallError::Timeout,
        OpenAIError::Reqwest(e) => {
            CallError::Transport(format!("cannot reach the endpoint: {}", source_chain(&e)))
        }
        OpenAIError::ApiError(a) => CallError::Status {
            code: a.status_code.as_u16(),
            message: pisama_trace::util::truncate(a.api_error.message.trim(), 300),
        },
        OpenAIError::JSONDeserialize(err, body) => CallError::Transport(format!(
            "the answer is not a chat completion ({err}); the endpoint said: {}",
            pisama_trace::util::truncate(body.trim(), 300)
        )),
        other => CallError::Transport(pisama_trace::util::truncate(&other.to_string(), 300)),
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
