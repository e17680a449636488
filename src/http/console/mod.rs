//! The web console at `/router/console`: the message log (paged, searched,
//! live), a test message through the router, replies, and each message's
//! details. Server-rendered HTML that works without JavaScript; with it,
//! the log follows the store as it changes.
//!
//! | path | what |
//! | --- | --- |
//! | `GET /router/console?q=&page=` | the log, newest first, 20 a page; `q` searches |
//! | `GET /router/console/fragment?q=&page=` | the log alone, for live updates |
//! | `GET /router/console/events` | server-sent events: "the store changed" |
//! | `GET /router/console/message/ID` | a message, its delivery errors and reports |
//! | `POST /router/console/send` | a test message, routed as backend `console` |
//! | `POST /router/console/reply` | an outgoing message to a known number |
//! | `GET/POST /router/console/login`, `POST /router/console/logout` | sessions |
//!
//! - `session`: sessions in memory and the cookie;
//! - `auth`: passwords (argon2) and the failed-login limit;
//! - `csrf`: the per-session token every form carries;
//! - `search`: pages and search over a bounded scan;
//! - `actions`: sending a test message and a reply;
//! - `live`: the events stream, bounded in clients;
//! - `pages`: the HTML (maud, escaped).
//!
//! Every path needs a login, except the login page and the static script
//! and stylesheet. With no `[[console_users]]` the console answers 404.

mod actions;
pub mod auth;
mod csrf;
pub mod live;
pub mod pages;
pub mod search;
pub mod session;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, SET_COOKIE,
};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use maud::Markup;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{ConsoleConfig, ConsoleUser, MAX_USERNAME_CHARS};
use crate::http::answer::FieldErrors;
use crate::http::context::Context;
use crate::http::request::{self, Params};
use crate::http::server::PeerAddr;
use crate::model::MessageId;
use crate::reload::Reloadable;

pub use auth::hash_password;
use pages::{Forms, User, BASE};
use session::Session;

pub use crate::http::body::ResponseBody;

/// The login form's double-submit cookie (there is no session yet to
/// hold its CSRF token).
const LOGIN_COOKIE: &str = "rapidbox_login";

/// Password checks running at once: argon2 takes ~19 MiB and tens of
/// milliseconds each, so a burst of logins must not take all memory or
/// every blocking thread.
const MAX_VERIFYING: usize = 2;

/// The console's state: users, sessions, the login limit, live streams.
pub struct Console {
    /// Whose `[[console_users]]` may log in, read per request: a reload
    /// adds, removes or changes them (none: the console is disabled).
    settings: Reloadable,
    sessions: session::Sessions,
    limiter: auth::LoginLimiter,
    live: live::Live,
    verifying: Semaphore,
    secure_cookie: bool,
}

impl Console {
    /// The console for `settings`' users with settings `c`. While there
    /// are no users it answers every path 404, disabled rather than open.
    pub fn new(
        c: &ConsoleConfig,
        settings: Reloadable,
        shutdown: CancellationToken,
    ) -> Arc<Console> {
        let users = settings.load().console_users.len();
        if users > 0 {
            info!(
                users,
                secure_cookie = c.secure_cookie,
                "web console at /router/console"
            );
        }
        Arc::new(Console {
            settings,
            sessions: session::Sessions::new(c.max_sessions, c.session_idle()),
            limiter: auth::LoginLimiter::default(),
            live: live::Live::new(c.max_live_clients, shutdown),
            verifying: Semaphore::new(MAX_VERIFYING),
            secure_cookie: c.secure_cookie,
        })
    }

    /// The users who may log in now.
    fn users(&self) -> Vec<ConsoleUser> {
        self.settings.load().console_users.clone()
    }
}

/// Whether `path` is the console's.
pub fn is_console_path(path: &str) -> bool {
    path == BASE
        || path
            .strip_prefix(BASE)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A whole response.
fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ResponseBody> {
    let mut response = crate::http::body::whole(Response::new(Full::new(body.into())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Pages show live data and a CSRF token: never from a cache.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// An HTML page.
pub fn html(status: StatusCode, markup: Markup) -> Response<ResponseBody> {
    respond(status, "text/html; charset=utf-8", pages::render(markup))
}

fn redirect(to: &str) -> Response<ResponseBody> {
    let mut response = respond(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        Bytes::new(),
    );
    if let Ok(to) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, to);
    }
    response
}

fn with_cookie(mut response: Response<ResponseBody>, cookie: String) -> Response<ResponseBody> {
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

fn error_page(status: StatusCode, title: &str, text: &str) -> Response<ResponseBody> {
    html(status, pages::message_page(title, text))
}

/// Why a console request failed, beyond form errors (which re-show the
/// form).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Request(#[from] crate::http::answer::ApiError),
    #[error("the store could not be read: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("a background task failed")]
    Task,
}

impl Failure {
    fn into_response(self) -> Response<ResponseBody> {
        use crate::http::answer::ApiError;
        match self {
            Failure::Request(ApiError::Invalid(fields)) => {
                let text = fields
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                error_page(StatusCode::BAD_REQUEST, "Bad request", &text)
            }
            Failure::Request(e) => {
                // The API error's own status (413, 408, 415, 503, ...) and
                // words.
                let text = e.to_string();
                let status = e.into_response().status();
                error_page(status, "Request refused", &text)
            }
            Failure::Store(e) if e.is_transient() => {
                warn!(error = %e, "console: store unavailable");
                error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Store unavailable",
                    "The store could not be read or written; try again.",
                )
            }
            Failure::Store(e) => {
                error!(error = %e, "console: store error");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Store error",
                    "The store refused the request; trying again will not help. The log says why.",
                )
            }
            Failure::Task => error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "A background task failed.",
            ),
        }
    }
}

/// Answers a request for a console path.
pub async fn serve(
    ctx: &Context,
    console: Option<&Console>,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let Some(console) = console.filter(|c| !c.settings.load().console_users.is_empty()) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Console disabled",
            "The web console is disabled: no [[console_users]] are configured. \
             Create one with `rapidbox hash-password`.",
        );
    };
    let path = request.uri().path();
    let sub = path.strip_prefix(BASE).unwrap_or_default();
    let sub = sub.strip_suffix('/').unwrap_or(sub).to_owned();
    let method = request.method().clone();
    let peer = request.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    match (sub.as_str(), &method) {
        ("/console.css", &Method::GET) => {
            return respond(StatusCode::OK, "text/css; charset=utf-8", pages::CSS)
        }
        ("/console.js", &Method::GET) => {
            return respond(StatusCode::OK, "text/javascript; charset=utf-8", pages::JS)
        }
        _ => {}
    }
    let known = matches!(
        sub.as_str(),
        "" | "/fragment" | "/events" | "/login" | "/logout" | "/send" | "/reply"
    ) || sub.starts_with("/message/");
    if !known {
        return error_page(StatusCode::NOT_FOUND, "Not found", "No such console page.");
    }
    let allowed: &[Method] = match sub.as_str() {
        "/login" => &[Method::GET, Method::POST],
        "/logout" | "/send" | "/reply" => &[Method::POST],
        _ => &[Method::GET],
    };
    if !allowed.contains(&method) {
        let mut response = error_page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "This page does not take that method.",
        );
        let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        if let Ok(value) = HeaderValue::from_str(&list.join(", ")) {
            response.headers_mut().insert(hyper::header::ALLOW, value);
        }
        return response;
    }
    let token = session::cookie(request.headers(), session::COOKIE).map(str::to_owned);
    let login_token = session::cookie(request.headers(), LOGIN_COOKIE).map(str::to_owned);
    let (head, params) = match request::params(request, ctx.body).await {
        Ok(read) => read,
        Err(e) => return Failure::Request(e).into_response(),
    };
    if sub == "/login" {
        return login(
            ctx,
            console,
            &head.headers,
            &params,
            login_token.as_deref(),
            peer,
            method == Method::POST,
        )
        .await;
    }
    // A session whose user a reload removed is over.
    let users = console.users();
    let session = token
        .as_deref()
        .and_then(|t| console.sessions.touch(t))
        .filter(|s| users.iter().any(|u| u.username == s.username));
    let Some(session) = session else {
        return match sub.as_str() {
            // Scripts get a status they can act on, not a login page.
            "/fragment" | "/events" => respond(
                StatusCode::UNAUTHORIZED,
                "text/plain; charset=utf-8",
                "log in first",
            ),
            _ => redirect(&format!("{BASE}/login")),
        };
    };
    if method == Method::POST && !csrf::matches(&session.csrf, params.get(csrf::FIELD)) {
        warn!(user = %session.username, path = %sub, "console: POST without a valid CSRF token refused");
        return error_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form's security token is missing or wrong. Reload the page and try again.",
        );
    }
    let result = match sub.as_str() {
        "" => log_page(ctx, &session, &params, Forms::default(), StatusCode::OK).await,
        "/fragment" => fragment(ctx, &params).await,
        "/events" => Ok(events(ctx, console)),
        "/logout" => {
            if let Some(t) = &token {
                console.sessions.end(t);
            }
            info!(user = %session.username, "console: logged out");
            let response = redirect(&format!("{BASE}/login?out=1"));
            Ok(with_cookie(
                response,
                session::set_cookie(session::COOKIE, None, "/router", console.secure_cookie),
            ))
        }
        "/send" => actions::send(ctx, &session, &params).await,
        "/reply" => actions::reply(ctx, &session, &params).await,
        other => match other
            .strip_prefix("/message/")
            .and_then(|id| id.parse::<MessageId>().ok())
        {
            Some(id) => detail(ctx, &session, id).await,
            None => Ok(error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "No such message.",
            )),
        },
    };
    result.unwrap_or_else(Failure::into_response)
}

/// The `page` parameter: absent is 1; anything but a positive number is
/// an error naming the field.
fn page_number(params: &Params) -> Result<usize, Failure> {
    match params.get("page").map(str::trim) {
        None | Some("") => Ok(1),
        Some(p) => match p.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => {
                let mut bad = FieldErrors::new();
                bad.insert("page", "must be a page number, 1 or more".to_owned());
                Err(crate::http::answer::ApiError::Invalid(bad).into())
            }
        },
    }
}

async fn read_page(ctx: &Context, query: &str, number: usize) -> Result<search::Page, Failure> {
    let store = ctx.store().clone();
    let query = search::Query::parse(query);
    store
        .long_read(move |store| async move { search::page(&store, &query, number).await })
        .await
        .map_err(|_| Failure::Task)?
        .map_err(Failure::from)
}

/// Notes shown after an action, by the code in `?notice=`: fixed texts,
/// so nothing from the URL is shown.
fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "sent" => Some("Test message sent; its replies are in the log."),
        "replied" => Some("Reply queued."),
        _ => None,
    }
}

async fn log_page(
    ctx: &Context,
    session: &Session,
    params: &Params,
    mut forms: Forms<'_>,
    status: StatusCode,
) -> Result<Response<ResponseBody>, Failure> {
    let number = page_number(params)?;
    let query = params.get("q").unwrap_or_default().trim();
    let page = read_page(ctx, query, number).await?;
    forms.query = query;
    if forms.notice.is_none() {
        forms.notice = notice(params.get("notice"));
    }
    let user = User {
        name: &session.username,
        csrf: &session.csrf,
    };
    Ok(html(status, pages::console(&user, &page, &forms)))
}

async fn fragment(ctx: &Context, params: &Params) -> Result<Response<ResponseBody>, Failure> {
    let number = page_number(params)?;
    let query = params.get("q").unwrap_or_default().trim();
    let page = read_page(ctx, query, number).await?;
    Ok(html(StatusCode::OK, pages::log(&page, query)))
}

fn events(ctx: &Context, console: &Console) -> Response<ResponseBody> {
    match console.live.events(ctx.store().changes()) {
        Some(events) => {
            let mut response = crate::http::body::stream(Response::new(events));
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        None => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "too many live clients; reload the page to see new messages",
        ),
    }
}

async fn detail(
    ctx: &Context,
    session: &Session,
    id: MessageId,
) -> Result<Response<ResponseBody>, Failure> {
    let store = &ctx.store();
    let Some(message) = store.message(id).await? else {
        return Ok(error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("There is no message {id}."),
        ));
    };
    let answered = match message.in_response_to {
        Some(other) => store.message(other).await?,
        None => None,
    };
    let errors = store.delivery_errors(id).await?;
    let dlrs = store.dlr_events(id).await?;
    let user = User {
        name: &session.username,
        csrf: &session.csrf,
    };
    Ok(html(
        StatusCode::OK,
        pages::detail(&user, &message, answered.as_ref(), &errors, &dlrs),
    ))
}

/// The login page, and logging in.
async fn login(
    ctx: &Context,
    console: &Console,
    headers: &HeaderMap,
    params: &Params,
    login_token: Option<&str>,
    peer: Option<IpAddr>,
    post: bool,
) -> Response<ResponseBody> {
    let page = |status, username: &str, error: Option<&str>, notice: Option<&str>| {
        // A fresh double-submit token with every login page.
        let token = session::random_token();
        let response = html(status, pages::login(&token, username, error, notice));
        with_cookie(
            response,
            session::set_cookie(
                LOGIN_COOKIE,
                Some(&token),
                &format!("{BASE}/login"),
                console.secure_cookie,
            ),
        )
    };
    if !post {
        // Already logged in: straight to the console.
        let logged_in =
            session::cookie(headers, session::COOKIE).and_then(|t| console.sessions.touch(t));
        if logged_in.is_some() {
            return redirect(BASE);
        }
        let notice = params.get("out").map(|_| "Logged out.");
        return page(StatusCode::OK, "", None, notice);
    }
    if !csrf::matches(login_token.unwrap_or_default(), params.get(csrf::FIELD)) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "The login form's security token is missing or wrong. Reload the login page and try again.",
        );
    }
    let username = params.get("username").map(str::trim).unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    if username.chars().count() > MAX_USERNAME_CHARS {
        // No user has such a name: refused before anything is counted,
        // kept, logged or shown of it.
        return page(
            StatusCode::BAD_REQUEST,
            "",
            Some(&format!(
                "username: at most {MAX_USERNAME_CHARS} characters"
            )),
            None,
        );
    }
    if username.is_empty() || password.is_empty() {
        let field = if username.is_empty() {
            "username"
        } else {
            "password"
        };
        return page(
            StatusCode::BAD_REQUEST,
            username,
            Some(&format!("{field}: required")),
            None,
        );
    }
    let attempt = match console.limiter.attempt(username, peer, Instant::now()) {
        Ok(attempt) => attempt,
        Err(wait) => {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            warn!(username, ?peer, "console: login refused, too many failures");
            ctx.intake.metrics().http.auth_failure("console", true);
            return page(
                StatusCode::TOO_MANY_REQUESTS,
                username,
                Some(&format!(
                    "Too many failed logins for this username or from this address. \
                     Try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                )),
                None,
            );
        }
    };
    let user = console
        .users()
        .iter()
        .find(|u| u.username == username)
        .cloned();
    let ok = match console.verifying.acquire().await {
        Ok(_permit) => {
            let password = password.to_owned();
            let checked = user.clone();
            tokio::task::spawn_blocking(move || auth::verify(checked.as_ref(), &password))
                .await
                .unwrap_or(false)
        }
        // The semaphore is never closed.
        Err(_) => false,
    };
    if !ok {
        // The attempt stays counted as a failure.
        warn!(username, ?peer, "console: failed login");
        ctx.intake.metrics().http.auth_failure("console", false);
        return page(
            StatusCode::UNAUTHORIZED,
            username,
            Some("Wrong username or password."),
            None,
        );
    }
    console.limiter.succeeded(attempt);
    let token = console.sessions.start(username);
    info!(username, ?peer, "console: logged in");
    let response = redirect(BASE);
    let response = with_cookie(
        response,
        session::set_cookie(
            session::COOKIE,
            Some(&token),
            "/router",
            console.secure_cookie,
        ),
    );
    with_cookie(
        response,
        session::set_cookie(
            LOGIN_COOKIE,
            None,
            &format!("{BASE}/login"),
            console.secure_cookie,
        ),
    )
}
