//! A `harness = false` fixture for the several-nodes benchmark in BENCHMARKS.md: 100 tests on
//! 100 inputs (busybox plus a file naming the test and `NODES_BENCH_SALT`, so a new salt makes
//! every input and check cold), 10 checks each: 1 000 checks spread over nodes by placement.

use buildtest::prelude::*;

fn test_on(name: &str) -> Test {
    let salt = std::env::var("NODES_BENCH_SALT").unwrap_or_default();
    let input = State::image("buildtest/busybox:latest").file(FileAction::mkfile(
        "/bench",
        0o644,
        format!("{name} {salt}\n"),
    ));
    (0..10).fold(Test::on(input), |test, k| {
        test.check(cmd(["echo".to_owned(), k.to_string()]).stdout_equals(format!("{k}\n")))
    })
}

macro_rules! tests {
    ($($name:ident)*) => {
        $(
            #[buildtest::test]
            fn $name() -> Test {
                test_on(concat!(module_path!(), "::", stringify!($name)))
            }
        )*
    };
}

macro_rules! modules {
    ($($module:ident)*) => {
        $(
            mod $module {
                use super::*;
                tests!(t0 t1 t2 t3 t4 t5 t6 t7 t8 t9);
            }
        )*
    };
}

modules!(m0 m1 m2 m3 m4 m5 m6 m7 m8 m9);

fn main() {
    buildtest::main()
}
