//! Fixtures for the chart tests of this crate and of `repro`'s report (feature
//! `test-support`): a made-up round history, and the text elements of a drawn SVG.

use aggregator::history::{ClientRecord, ClientStatus, GlobalMetrics, RoundRecord};

/// Rounds 0 to `rounds` of `clients` clients, all accepted: global accuracy 10 % for the
/// initial model then 90 % + 1 point a round, loss falling as 2.3 / (1 + 10 r); each
/// client's own training accuracy the same as the global one, its loss 0.4 / r.
pub fn round_history(rounds: u64, clients: usize) -> Vec<RoundRecord> {
    (0..=rounds)
        .map(|r| {
            let mut rec = RoundRecord::bare(r, Some(r), "");
            let accuracy = if r == 0 { 0.1 } else { 0.9 + 0.01 * r as f32 };
            rec.global = Some(GlobalMetrics {
                loss: 2.3 / (1.0 + 10.0 * r as f32),
                accuracy,
                per_class_accuracy: vec![],
                examples: 100,
            });
            if r > 0 {
                for c in 0..clients {
                    rec.clients.push(ClientRecord {
                        client_id: format!("client-{c}"),
                        status: ClientStatus::Accepted,
                        num_examples: 100,
                        epoch_loss: vec![0.4 / r as f32],
                        epoch_accuracy: vec![accuracy],
                        train_seconds: 1.0,
                        round_trip_seconds: 1.1,
                        update_bytes: 1,
                        update_norm: None,
                        weight: None,
                        clipped_to: None,
                    });
                }
                rec.timings.total = 2.0;
            }
            rec
        })
        .collect()
}

/// Every `<text>` element of an SVG: its `y` attribute (empty if none) and its trimmed text.
pub fn svg_text_items(svg: &str) -> Vec<(String, String)> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let tag = &t[..t.find('>')?];
            let y = tag
                .split("y=\"")
                .nth(1)
                .and_then(|v| v.split('"').next())
                .unwrap_or_default();
            let body = &t[t.find('>')? + 1..];
            Some((
                y.to_string(),
                body[..body.find("</text>")?].trim().to_string(),
            ))
        })
        .collect()
}

/// The text of every `<text>` element of an SVG, trimmed.
pub fn svg_texts(svg: &str) -> Vec<String> {
    svg_text_items(svg).into_iter().map(|(_, t)| t).collect()
}
