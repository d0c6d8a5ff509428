//! Runner-side cost of preparing checks, without a builder (copied into the generated bench project).
//!
//! `prep_cost N`: for the N checks of suite N, does what the harness's `Backend::prepare` does per
//! check (the probe exec, a marshal for the check vertex's digest, the graph's marshal, `into_proto`)
//! and the protobuf encoding tonic does per Solve; prints the time per step and the bytes kept.

use std::time::Instant;

use buildtest::llb::Platform;
use prost::Message;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let input = bench_suite::input();
    let probe = buildtest::check::probe_state();
    let platform = Platform::linux_amd64();
    let checks = bench_suite::checks(n);
    let (mut t_exec, mut t_marshal1, mut t_marshal2, mut t_encode) = (0.0, 0.0, 0.0, 0.0);
    let mut kept = Vec::with_capacity(n);
    let mut encoded_bytes = 0usize;
    for (_, check) in &checks {
        let t = Instant::now();
        let exec = check.to_exec(&input, &probe).expect("exec");
        t_exec += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _vertex = exec.marshal(&platform).expect("marshal").head().map(str::to_owned);
        t_marshal1 += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let def = exec.marshal(&platform).expect("marshal").into_proto();
        t_marshal2 += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let buf = def.encode_to_vec();
        t_encode += t.elapsed().as_secs_f64();
        encoded_bytes = buf.len();
        kept.push(def);
    }
    let ms = |s: f64| s * 1000.0 / n as f64;
    println!(
        "{}",
        serde_json::json!({
            "checks": n, "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
            "ms_per_check": {"to_exec": ms(t_exec), "marshal_for_vertex_digest": ms(t_marshal1),
                             "marshal_graph_into_proto": ms(t_marshal2), "encode_request": ms(t_encode)},
            "definition_bytes": encoded_bytes, "probe_bytes": buildtest::check::probe_bytes().map(|b| b.len()).unwrap_or(0),
        })
    );
    drop(kept);
}
