//! Prometheus 指标：`GET /metrics`。标签都是低基数的（路由模板、状态码、上游名称、结果分类），
//! 不含密钥、提示词或任何请求内容。
//!
//! 指标名：
//! - `http_requests_total{route,status}`、`http_request_duration_seconds{route}`：每个 HTTP 请求；
//! - `gateway_attempts_total{upstream,outcome}`、`gateway_attempt_duration_seconds{upstream}`：每次上游尝试；
//! - `gateway_retries_total{upstream}`、`gateway_fallbacks_total`：重试与换上游；
//! - `gateway_breaker_open{upstream}`：熔断中为 1；
//! - `gateway_in_flight`：正在进行的上游调用数；
//! - `gateway_maybe_billed_failures_total{upstream}`：失败了、但可能已被上游计费的尝试；
//! - `config_file_reloads_total{result}`：手工改配置文件后的处理（`applied`、`refused`、`unchanged`）；
//! - `limits_tracked_clients{limiter}`：限流计数表里记着的调用方数（`v1`、`studio`；每分钟忘掉已回满的）；
//! - `access_denied_total{reason}`：访问控制拒绝的请求（`misdirected` 别的 Host、`cross_site` 跨站、`not_json`、
//!   `login_required`、`admin`、`metrics`、`file_link`）。

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// 安装全局的指标记录器（每个进程一次；重复调用无害）。
pub fn install() {
    HANDLE.get_or_init(|| {
        // 图像调用从几百毫秒到几分钟不等。
        let buckets = [
            0.005, 0.05, 0.25, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        ];
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), &buckets)
            .expect("桶列表非空")
            .install_recorder()
            .expect("进程内只安装一次记录器")
    });
}

/// `GET /metrics`：Prometheus 文本格式。
pub async fn render() -> String {
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// 记录每个 HTTP 请求的路由、状态码与耗时。
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "其他".into());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
