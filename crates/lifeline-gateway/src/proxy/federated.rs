//! The federated endpoints (`servers:`, issue 16: `{mcp_path}` and `/servers/NAME/mcp`) behind the client
//! listener's layers, each in its one home: the `auth:` layer ran already in [`Proxy::handle`] (its principal is in
//! [`Ctx::principal`]); here the edge rules of the MCP endpoint (`edge`: Host/Origin, `Accept`, `Content-Type`),
//! the body limit ([`Proxy::read_body`]), the policy point ([`Proxy::refusal`]: mirrored headers, per-tool rules on
//! the names the client sees, such as `github__create_issue`, the rate limit, the audit record) and the `tools/list`
//! filter ([`Proxy::list_filter`]) apply as on the proxied endpoint, and the request is counted in the per-request
//! metrics and in flight by its [`Ctx`]. The federation (`federation.rs`) then answers it.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::server::RequestBody;
use http::{Method, Request, Response};

use super::{method_not_allowed, session_id, subject, Ctx, Proxy};
use crate::body::Body;
use crate::edge;
use crate::federation::{Call, Federation, Mirrored};
use crate::policy::list as tool_list;
use crate::rpc;

impl Proxy {
    /// The federated endpoint `req` names (the caller checked [`Federation::serves`]).
    pub(super) async fn federated(
        &self,
        fed: Arc<Federation>,
        req: Request<RequestBody>,
        peer: SocketAddr,
        ctx: &mut Ctx,
    ) -> Response<Body> {
        if let Err(r) = edge::check_host_and_origin(&self.cfg.edge, req.headers()) {
            return self.reject(r, None);
        }
        let checked = match *req.method() {
            Method::POST => edge::check_post_accept(req.headers())
                .and_then(|()| edge::check_content_type(req.headers())),
            Method::GET => edge::check_get_accept(req.headers()),
            Method::DELETE => Ok(()),
            _ => return method_not_allowed(),
        };
        if let Err(r) = checked {
            return self.reject(r, None);
        }
        let (parts, incoming) = req.into_parts();
        let session = session_id(&parts.headers);
        let mut call = Call {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            session,
            protocol_version: parts
                .headers
                .get(crate::federation::PROTOCOL_VERSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: bytes::Bytes::new(),
            principal: subject(ctx).map(Arc::from),
            client: peer.ip(),
            mirrored: Mirrored {
                method: parts.headers.contains_key("mcp-method"),
                name: parts.headers.contains_key("mcp-name"),
            },
        };
        if parts.method != Method::POST {
            ctx.method = if parts.method == Method::GET {
                "GET"
            } else {
                "DELETE"
            };
            return fed.handle(call).await;
        }
        call.body = match self.read_body(incoming).await {
            Ok(b) => b,
            Err(resp) => return resp,
        };
        let summary = rpc::summarize(&call.body);
        ctx.method = summary.label;
        ctx.start_trace(&call.body, &parts.headers, peer);
        if let Some(resp) = self.refusal(&summary, &parts.headers, call.session.as_deref(), ctx) {
            return resp;
        }
        let list = self.list_filter(&summary, ctx);
        let resp = fed.handle(call).await;
        match list {
            // The federation answers in JSON: the merged list is filtered like an upstream's JSON answer.
            Some(filter) => tool_list::filter_json(resp, &filter).await,
            None => resp,
        }
    }
}
