//! CloudEvents on POST /: binary and structured requests, replies in the same mode, and
//! malformed events refused with 400 while the node stays up.

use base64::Engine as _;
use engine::weights;
use serde_json::{Value, json};

use crate::common::{self, Server};

const BINARY_CE: [(&str, &str); 4] = [
    ("ce-specversion", "1.0"),
    ("ce-id", "evt-1"),
    ("ce-source", "/fedge/aggregator"),
    ("ce-type", "dev.fedge.train.requested"),
];

async fn post_binary(server: &Server, headers: &[(&str, &str)], body: &Value) -> reqwest::Response {
    let mut req = server
        .http
        .post(server.url("/"))
        .header("content-type", "application/json")
        .header("prefer", "reply");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(body.to_string()).send().await.unwrap()
}

async fn post_structured(server: &Server, event: &Value) -> reqwest::Response {
    server
        .http
        .post(server.url("/"))
        .header(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )
        .body(event.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_mode_event_gets_a_binary_training_completed_reply() {
    let dir = common::shard_dir(128, |_, _| {});
    let server = Server::start(common::config(dir.path())).await;
    let model = common::model_bytes(common::small_spec(), 1);
    let response = post_binary(&server, &BINARY_CE, &common::request(&model, 1)).await;
    assert_eq!(response.status(), 200);
    let h = response.headers().clone();
    assert_eq!(h["ce-specversion"], "1.0");
    assert_eq!(h["ce-type"], "dev.fedge.train.completed");
    assert_eq!(h["ce-source"], "/fedge/fn-train/node-7");
    assert_eq!(h["ce-round"], "3");
    assert_ne!(h["ce-id"], "evt-1");
    assert!(!h["ce-id"].is_empty() && !h["ce-time"].is_empty());
    assert_eq!(h["content-type"], "application/octet-stream");
    assert!(!h.contains_key("ce-datacontenttype"));
    let update = response.bytes().await.unwrap().to_vec();
    let loaded = weights::from_bytes(update).unwrap();
    assert_eq!(loaded.meta.extra["fedge.num_examples"], "128");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_mode_event_gets_a_structured_reply_with_data_base64() {
    let dir = common::shard_dir(128, |_, _| {});
    let server = Server::start(common::config(dir.path())).await;
    let model = common::model_bytes(common::small_spec(), 1);
    let event = json!({
        "specversion": "1.0", "id": "evt-2", "source": "/fedge/aggregator",
        "type": "dev.fedge.train.requested", "datacontenttype": "application/json",
        "data": common::request(&model, 1),
    });
    let response = post_structured(&server, &event).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/cloudevents+json")
    );
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["specversion"], "1.0");
    assert_eq!(reply["type"], "dev.fedge.train.completed");
    assert_eq!(reply["source"], "/fedge/fn-train/node-7");
    assert_eq!(reply["round"], 3);
    assert_eq!(reply["datacontenttype"], "application/octet-stream");
    assert!(reply.get("data").is_none());
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(reply["data_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(weights::from_bytes(bytes).unwrap().meta.round, 3);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_400_naming_the_problem_and_the_node_stays_up() {
    let dir = common::shard_dir(64, |_, _| {});
    let server = Server::start(common::config(dir.path())).await;
    let body = common::request(&common::model_bytes(common::small_spec(), 1), 1);
    let without = |name: &str| -> Vec<(&str, &str)> {
        BINARY_CE
            .iter()
            .copied()
            .filter(|(k, _)| *k != name)
            .collect()
    };
    let with = |name: &'static str, value: &'static str| -> Vec<(&'static str, &'static str)> {
        BINARY_CE
            .iter()
            .map(|&(k, v)| if k == name { (k, value) } else { (k, v) })
            .collect()
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (without("ce-id"), "ce-id"),
        (without("ce-source"), "ce-source"),
        (without("ce-type"), "ce-type"),
        (without("ce-specversion"), "ce-specversion"),
        (vec![], "not a CloudEvent"),
        (with("ce-specversion", "0.3"), "specversion"),
        (with("ce-type", "dev.other.thing"), "event type"),
    ];
    for (headers, needle) in cases {
        let r = post_binary(&server, &headers, &body).await;
        assert_eq!(r.status(), 400, "{needle}");
        let e: Value = r.json().await.unwrap();
        assert!(
            e["error"].as_str().unwrap().contains(needle),
            "{e} lacks {needle}"
        );
    }
    let structured = [
        (
            json!({"specversion": "1.0", "source": "/a", "type": "dev.fedge.train.requested"}),
            "id",
        ),
        (
            json!({"specversion": "2.0", "id": "1", "source": "/a", "type": "dev.fedge.train.requested"}),
            "specversion",
        ),
        (json!(["not", "an", "object"]), "object"),
    ];
    for (event, needle) in structured {
        let r = post_structured(&server, &event).await;
        assert_eq!(r.status(), 400, "{needle}");
        let e: Value = r.json().await.unwrap();
        assert!(
            e["error"].as_str().unwrap().contains(needle),
            "{e} lacks {needle}"
        );
    }
    // An event whose data is not a valid training request: 422 like POST /train.
    let mut bad = body.clone();
    bad["epochs"] = 0.into();
    assert_eq!(post_binary(&server, &BINARY_CE, &bad).await.status(), 422);
    // Still up, and still training.
    assert_eq!(
        server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(post_binary(&server, &BINARY_CE, &body).await.status(), 200);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_is_answered_without_training_twice() {
    let dir = common::shard_dir(64, |_, _| {});
    let server = Server::start(common::config(dir.path())).await;
    let model = common::model_bytes(common::small_spec(), 1);
    let body = common::request(&model, 1);
    let first = post_binary(&server, &BINARY_CE, &body).await;
    assert_eq!(first.status(), 200);
    let first_id = first.headers()["ce-id"].clone();
    let first_bytes = first.bytes().await.unwrap();
    let again = post_binary(&server, &BINARY_CE, &body).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["ce-id"], first_id);
    assert_eq!(again.bytes().await.unwrap(), first_bytes);
    assert_eq!(
        server.metric("fn_train_jobs_total{outcome=\"ok\"}").await,
        1.0
    );

    // The same event arriving while it still trains: 409, which Knative retries.
    let long = common::request(&model, 1000);
    let headers: Vec<(&str, &str)> = BINARY_CE
        .iter()
        .map(|&(k, v)| {
            if k == "ce-id" {
                (k, "evt-long")
            } else {
                (k, v)
            }
        })
        .collect();
    let running = {
        let (http, url, body) = (server.http.clone(), server.url("/"), long.to_string());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tokio::spawn(async move {
            let mut req = http.post(url).header("content-type", "application/json");
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.body(body).send().await
        })
    };
    server.wait_for_training().await;
    assert_eq!(post_binary(&server, &headers, &long).await.status(), 409);
    // A different event while busy: 429; the last answered one is still replayed.
    let other: Vec<(&str, &str)> = BINARY_CE
        .iter()
        .map(|&(k, v)| {
            if k == "ce-id" {
                (k, "evt-other")
            } else {
                (k, v)
            }
        })
        .collect();
    assert_eq!(post_binary(&server, &other, &long).await.status(), 429);
    assert_eq!(post_binary(&server, &BINARY_CE, &body).await.status(), 200);
    running.abort();
    server.wait_idle().await;
    server.stop().await.unwrap();
}
