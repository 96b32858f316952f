//! Sum of the primes below 10000 (5736396) and their mean gap, with std on WASI.
fn main() {
    let mut composite = vec![false; 10000];
    let mut primes = Vec::new();
    for i in 2..10000usize {
        if composite[i] {
            continue;
        }
        primes.push(i as i64);
        for j in (i * i..10000).step_by(i) {
            composite[j] = true;
        }
    }
    let sum: i64 = primes.iter().sum();
    println!("sum of primes below 10000 = {sum}");
    let gap = (primes[primes.len() - 1] - 2) as f64 / (primes.len() - 1) as f64;
    println!("mean gap = {gap:.9}");
    println!("args = {}", std::env::args().count());
}
