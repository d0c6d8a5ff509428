"""Experiment (scratch copy only): `client::Graph::new` hashes every op of every Definition it is given,
so each Solve re-hashes the 1.4 MB probe op. Memoize the digest of large ops (>= 64 KiB) by the identity
of their shared `Bytes` buffer (the buffer is pinned in the memo so its address cannot be reused)."""

import sys
from pathlib import Path

path = Path(sys.argv[1]) / "runner" / "src" / "client" / "graph.rs"
s = path.read_text()
old = """            let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));"""
new = """            let digest = large_op_digest(bytes);"""
assert old in s, "graph.rs changed: update the experiment"
s = s.replace(old, new, 1)
s += '''

/// Digest of an op; ops of at least 64 KiB are hashed once per shared buffer.
fn large_op_digest(bytes: &bytes::Bytes) -> String {
    use std::sync::Mutex;
    static MEMO: Mutex<Vec<(bytes::Bytes, String)>> = Mutex::new(Vec::new());
    let hash = |b: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(b)));
    if bytes.len() < 64 * 1024 {
        return hash(bytes);
    }
    if let Ok(memo) = MEMO.lock() {
        if let Some((_, d)) = memo.iter().find(|(b, _)| b.as_ptr() == bytes.as_ptr() && b.len() == bytes.len()) {
            return d.clone();
        }
    }
    let digest = hash(bytes);
    if let Ok(mut memo) = MEMO.lock() {
        memo.push((bytes.clone(), digest.clone()));
    }
    digest
}
'''
path.write_text(s)
print(f"patched {path}")
