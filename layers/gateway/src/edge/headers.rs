//! [`EdgeHeadersLayer`]: request ids and sensitive headers in one layer.
//!
//! It does what four tower-http layers did in the gateway's edge, in their
//! order: `SetSensitiveRequestHeaders`, `SetRequestId`,
//! `PropagateRequestId` and `SetSensitiveResponseHeaders`. As four they
//! looked each sensitive name up with its own hash, read `x-request-id`
//! twice and wrapped the response future three times: about 4,000
//! instructions per request in the gateway (callgrind,
//! `benches/peers/instructions.sh`). Here one pass over each message's
//! names marks the sensitive values, and the request's id travels in the
//! response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tower_http::request_id::{MakeRequestId, RequestId};

/// The header that carries request ids.
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Marks the values of `request_sensitive` sensitive on requests, gives a
/// request without an `x-request-id` one made by `M` (the value is also
/// the request's [`RequestId`] extension), echoes the request's id on a
/// response that has none, and marks the values of `response_sensitive`
/// sensitive on responses.
#[derive(Clone, Debug)]
pub(crate) struct EdgeHeadersLayer<M> {
    make_request_id: M,
    request_sensitive: &'static [HeaderName],
    response_sensitive: &'static [HeaderName],
}

impl<M> EdgeHeadersLayer<M> {
    /// The layer with its id maker and the two lists of sensitive names.
    pub(crate) fn new(
        make_request_id: M,
        request_sensitive: &'static [HeaderName],
        response_sensitive: &'static [HeaderName],
    ) -> Self {
        Self {
            make_request_id,
            request_sensitive,
            response_sensitive,
        }
    }
}

impl<S, M: Clone> Layer<S> for EdgeHeadersLayer<M> {
    type Service = EdgeHeaders<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        EdgeHeaders {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service of [`EdgeHeadersLayer`].
#[derive(Clone, Debug)]
pub(crate) struct EdgeHeaders<S, M> {
    inner: S,
    layer: EdgeHeadersLayer<M>,
}

/// Marks the values of the headers named in `names` sensitive.
fn mark_sensitive(headers: &mut HeaderMap, names: &[HeaderName]) {
    for (name, value) in headers.iter_mut() {
        if names.contains(name) {
            value.set_sensitive(true);
        }
    }
}

impl<S, M, ReqBody, ResBody> Service<Request<ReqBody>> for EdgeHeaders<S, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    M: MakeRequestId,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = EdgeHeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        mark_sensitive(request.headers_mut(), self.layer.request_sensitive);
        let id = match request.headers().get(&X_REQUEST_ID) {
            Some(id) => {
                let id = id.clone();
                if request.extensions().get::<RequestId>().is_none() {
                    request.extensions_mut().insert(RequestId::new(id.clone()));
                }
                Some(id)
            }
            None => self
                .layer
                .make_request_id
                .make_request_id(&request)
                .map(|made| {
                    let id = made.header_value().clone();
                    request.extensions_mut().insert(made);
                    request
                        .headers_mut()
                        .insert(X_REQUEST_ID.clone(), id.clone());
                    id
                }),
        };
        EdgeHeadersFuture {
            inner: self.inner.call(request),
            id,
            response_sensitive: self.layer.response_sensitive,
        }
    }
}

pin_project! {
    /// Response future of [`EdgeHeaders`].
    #[derive(Debug)]
    pub(crate) struct EdgeHeadersFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
        response_sensitive: &'static [HeaderName],
    }
}

impl<F, B, E> Future for EdgeHeadersFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(own) = response.headers().get(&X_REQUEST_ID) {
            if response.extensions().get::<RequestId>().is_none() {
                let own = own.clone();
                response.extensions_mut().insert(RequestId::new(own));
            }
        } else if let Some(id) = this.id.take() {
            response
                .headers_mut()
                .insert(X_REQUEST_ID.clone(), id.clone());
            response.extensions_mut().insert(RequestId::new(id));
        }
        mark_sensitive(response.headers_mut(), this.response_sensitive);
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::header::{AUTHORIZATION, COOKIE, HOST, SET_COOKIE};
    use tower::ServiceExt;

    use super::*;

    static REQUEST: [HeaderName; 2] = [AUTHORIZATION, COOKIE];
    static RESPONSE: [HeaderName; 1] = [SET_COOKIE];

    #[derive(Clone)]
    struct Fixed;

    impl MakeRequestId for Fixed {
        fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
            Some(RequestId::new(HeaderValue::from_static("made")))
        }
    }

    /// An instance that answers with what it saw of the request: whether
    /// each header value was sensitive, its id, and `set-cookie` twice;
    /// with `own_id`, an `x-request-id` of its own.
    async fn exchange(request: Request<()>, own_id: bool) -> (Response<Vec<String>>, Vec<String>) {
        let service = tower::service_fn(move |request: Request<()>| async move {
            let mut seen: Vec<String> = request
                .headers()
                .iter()
                .map(|(n, v)| format!("{n} sensitive={}", v.is_sensitive()))
                .collect();
            let extension = request.extensions().get::<RequestId>().cloned();
            seen.push(format!(
                "extension={:?}",
                extension.map(|id| id.header_value().clone())
            ));
            let mut response = Response::new(seen);
            response
                .headers_mut()
                .append(SET_COOKIE, HeaderValue::from_static("a=1"));
            response
                .headers_mut()
                .append(SET_COOKIE, HeaderValue::from_static("b=2"));
            if own_id {
                response
                    .headers_mut()
                    .insert(&X_REQUEST_ID, HeaderValue::from_static("own"));
            }
            Ok::<_, Infallible>(response)
        });
        let response = EdgeHeadersLayer::new(Fixed, &REQUEST, &RESPONSE)
            .layer(service)
            .oneshot(request)
            .await
            .unwrap();
        let seen = response.body().clone();
        (response, seen)
    }

    #[tokio::test]
    async fn sensitive_values_are_marked_both_ways() {
        let request = Request::get("/")
            .header(HOST, "app.example")
            .header(COOKIE, "a=1")
            .header(COOKIE, "b=2")
            .header(AUTHORIZATION, "Bearer x")
            .body(())
            .unwrap();
        let (response, seen) = exchange(request, false).await;
        assert!(
            seen.contains(&"host sensitive=false".to_owned()),
            "{seen:?}"
        );
        let cookies = seen.iter().filter(|s| *s == "cookie sensitive=true");
        assert_eq!(cookies.count(), 2, "{seen:?}");
        assert!(seen.contains(&"authorization sensitive=true".to_owned()));
        let set_cookies: Vec<bool> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(HeaderValue::is_sensitive)
            .collect();
        assert_eq!(set_cookies, [true, true]);
        assert!(!response.headers()[&X_REQUEST_ID].is_sensitive());
    }

    #[tokio::test]
    async fn a_request_without_an_id_gets_one_echoed_on_the_response() {
        let (response, seen) = exchange(Request::new(()), false).await;
        assert!(seen.contains(&"x-request-id sensitive=false".to_owned()));
        assert!(
            seen.contains(&"extension=Some(\"made\")".to_owned()),
            "{seen:?}"
        );
        assert_eq!(response.headers()[&X_REQUEST_ID], "made");
        let extension = response.extensions().get::<RequestId>().unwrap();
        assert_eq!(extension.header_value(), "made");
    }

    #[tokio::test]
    async fn a_clients_id_is_kept_and_an_instances_own_wins() {
        let with_id = || {
            Request::get("/")
                .header(&X_REQUEST_ID, "abc-123")
                .body(())
                .unwrap()
        };
        let (response, seen) = exchange(with_id(), false).await;
        assert!(
            seen.contains(&"extension=Some(\"abc-123\")".to_owned()),
            "{seen:?}"
        );
        assert_eq!(response.headers()[&X_REQUEST_ID], "abc-123");
        assert_eq!(response.headers().get_all(&X_REQUEST_ID).iter().count(), 1);

        let (response, _) = exchange(with_id(), true).await;
        assert_eq!(response.headers()[&X_REQUEST_ID], "own");
        let extension = response.extensions().get::<RequestId>().unwrap();
        assert_eq!(extension.header_value(), "own");
    }
}
