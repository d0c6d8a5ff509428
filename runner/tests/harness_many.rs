//! A `harness = false` fixture with 1 000 registered tests (10 × 10 modules × 10 fns), for
//! the listing benchmark in `tests/harness.rs`: `--list --format terse` must stay fast and
//! never contact a builder.

use buildtest::prelude::*;

macro_rules! tests {
    ($($name:ident)*) => {
        $(
            #[buildtest::test]
            fn $name() -> Test {
                Test::on(State::image("buildtest/busybox:latest")).check(cmd(["true"]))
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

macro_rules! groups {
    ($($group:ident)*) => {
        $(
            mod $group {
                use super::*;
                modules!(m0 m1 m2 m3 m4 m5 m6 m7 m8 m9);
            }
        )*
    };
}

groups!(g0 g1 g2 g3 g4 g5 g6 g7 g8 g9);

fn main() {
    buildtest::main()
}
