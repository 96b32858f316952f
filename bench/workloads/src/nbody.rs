//! The n-body simulation of the Computer Language Benchmarks Game: f64 arithmetic and sqrt.

const PI: f64 = core::f64::consts::PI;
const SOLAR_MASS: f64 = 4.0 * PI * PI;
const DAYS_PER_YEAR: f64 = 365.24;

#[derive(Clone, Copy)]
struct Body {
    pos: [f64; 3],
    vel: [f64; 3],
    mass: f64,
}

fn bodies() -> [Body; 5] {
    let body = |pos: [f64; 3], vel: [f64; 3], mass: f64| Body {
        pos,
        vel: vel.map(|v| v * DAYS_PER_YEAR),
        mass: mass * SOLAR_MASS,
    };
    [
        body([0.0; 3], [0.0; 3], 1.0),
        body(
            [
                4.841_431_421_811_59,
                -1.160_320_044_027_428_4,
                -0.103_622_044_471_123_1,
            ],
            [
                1.660_076_642_744_037e-3,
                7.699_011_184_197_404e-3,
                -6.904_600_169_720_63e-5,
            ],
            9.547_919_384_243_266e-4,
        ),
        body(
            [
                8.343_366_718_244_58,
                4.124_798_564_124_305,
                -4.035_234_171_143_214e-1,
            ],
            [
                -2.767_425_107_268_624e-3,
                4.998_528_012_349_172e-3,
                2.304_172_975_737_639_3e-5,
            ],
            2.858_859_806_661_308e-4,
        ),
        body(
            [
                1.289_436_956_213_913_1e1,
                -1.511_115_140_169_863_1e1,
                -2.233_075_788_926_557_3e-1,
            ],
            [
                2.964_601_375_647_616e-3,
                2.378_471_739_594_809_5e-3,
                -2.965_895_685_402_375_6e-5,
            ],
            4.366_244_043_351_563e-5,
        ),
        body(
            [
                1.537_969_711_485_091_1e1,
                -2.591_931_460_998_796_4e1,
                1.792_587_729_503_711_8e-1,
            ],
            [
                2.680_677_724_903_893_2e-3,
                1.628_241_700_382_423e-3,
                -9.515_922_545_197_159e-5,
            ],
            5.151_389_020_466_114_5e-5,
        ),
    ]
}

/// Square root by Newton's method from a bit-level first guess: plain arithmetic, so the
/// native and Wasm builds compute the same bits without a `sqrt` instruction or libm.
fn sqrt(x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let mut r = f64::from_bits((x.to_bits() >> 1) + (1023u64 << 51));
    for _ in 0..6 {
        r = 0.5 * (r + x / r);
    }
    r
}

fn energy(b: &[Body; 5]) -> f64 {
    let mut e = 0.0;
    for i in 0..b.len() {
        let v = &b[i].vel;
        e += 0.5 * b[i].mass * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        for j in i + 1..b.len() {
            let d: [f64; 3] = core::array::from_fn(|k| b[i].pos[k] - b[j].pos[k]);
            e -= b[i].mass * b[j].mass / sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
        }
    }
    e
}

fn advance(b: &mut [Body; 5], dt: f64) {
    for i in 0..b.len() {
        for j in i + 1..b.len() {
            let d: [f64; 3] = core::array::from_fn(|k| b[i].pos[k] - b[j].pos[k]);
            let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
            let mag = dt / (d2 * sqrt(d2));
            let (mi, mj) = (b[i].mass, b[j].mass);
            for (k, dk) in d.iter().enumerate() {
                b[i].vel[k] -= dk * mj * mag;
                b[j].vel[k] += dk * mi * mag;
            }
        }
    }
    for body in b.iter_mut() {
        for k in 0..3 {
            body.pos[k] += dt * body.vel[k];
        }
    }
}

/// The system's energy after `steps` steps of 0.01 days, starting from the benchmark's
/// offset-momentum state.
pub fn nbody(steps: u32) -> f64 {
    let mut b = bodies();
    let mut p = [0.0; 3];
    for body in &b {
        for (pk, vk) in p.iter_mut().zip(body.vel) {
            *pk += vk * body.mass;
        }
    }
    for (v, pk) in b[0].vel.iter_mut().zip(p) {
        *v = -pk / SOLAR_MASS;
    }
    for _ in 0..steps {
        advance(&mut b, 0.01);
    }
    energy(&b)
}
