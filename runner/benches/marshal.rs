//! How marshalling scales with the number of checks on one input.
//!
//! - `suite/N`: one `input.requires("suite", checks)` with N checks, marshalled once;
//! - `per_check/N`: N separate `input.requires(id_i, [check_i])` definitions
//!   (one Solve per check, the runner's strategy), each marshalled;
//! - `build_and_marshal_per_check/1000`: the same including building the states.
//!
//! Run: `cargo bench -p buildtest --bench marshal -- --quick`.

use std::hint::black_box;

use buildtest::llb::{NetMode, Platform, State};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn input() -> State {
    State::image("docker.io/library/alpine:3.20")
}

fn check(input: &State, i: usize) -> State {
    input
        .run(["/bin/sh", "-c", &format!("test -f /etc/file-{i}")])
        .network(NetMode::None)
        .root()
}

fn marshalling(c: &mut Criterion) {
    let platform = Platform::linux_amd64();
    let input = input();
    let mut group = c.benchmark_group("marshal");
    for n in [10_usize, 100, 1000] {
        let checks: Vec<State> = (0..n).map(|i| check(&input, i)).collect();
        group.throughput(Throughput::Elements(n as u64));

        let suite = input.requires("suite", checks.clone());
        group.bench_with_input(BenchmarkId::new("suite", n), &suite, |b, suite| {
            b.iter(|| black_box(suite.marshal(&platform).map(|d| d.to_bytes().len())));
        });

        let per_check: Vec<State> = checks
            .iter()
            .enumerate()
            .map(|(i, c)| input.requires(&format!("check-{i}"), [c.clone()]))
            .collect();
        group.bench_with_input(BenchmarkId::new("per_check", n), &per_check, |b, states| {
            b.iter(|| {
                let total: usize = states
                    .iter()
                    .map(|s| s.marshal(&platform).map_or(0, |d| d.to_bytes().len()))
                    .sum();
                black_box(total)
            });
        });
    }
    group.throughput(Throughput::Elements(1000));
    group.bench_function("build_and_marshal_per_check/1000", |b| {
        b.iter(|| {
            let input = State::image("alpine:3.20");
            let total: usize = (0..1000)
                .map(|i| {
                    let state = input.requires(&format!("check-{i}"), [check(&input, i)]);
                    state.marshal(&platform).map_or(0, |d| d.to_bytes().len())
                })
                .sum();
            black_box(total)
        });
    });
    group.finish();
}

criterion_group!(benches, marshalling);
criterion_main!(benches);
