//! The benchmark chart: every figure of a `make bench` run beside the Linux 6.1 and seL4
//! figures measured on the same QEMU command (docs/design.md §7, docs/performance.md),
//! drawn as an SVG with the `plotters` crate (`target/bench/chart.svg`).
//!
//! One row per figure, one bar per system, on a logarithmic axis of instructions (the
//! figures span 50 to 25 million); a figure without a reference figure has our bar alone.
//! Figures that are not instruction counts (latencies in counter ticks, request counts)
//! are left out: they have no peer to stand beside.

use plotters::prelude::*;

use crate::bench::Summary;

/// A figure's reference values, where one was measured: Linux 6.1 and seL4 on the same
/// QEMU (`-icount shift=0`, guest instructions), from docs/design.md §7 and the issues'
/// measurements quoted in docs/performance.md.
pub struct Reference {
    pub name: &'static str,
    pub linux: Option<f64>,
    pub sel4: Option<f64>,
}

const fn both(name: &'static str, linux: Option<f64>, sel4: Option<f64>) -> Reference {
    Reference { name, linux, sel4 }
}

const fn linux(name: &'static str, value: f64) -> Reference {
    both(name, Some(value), None)
}

const fn sel4(name: &'static str, value: f64) -> Reference {
    both(name, None, Some(value))
}

pub const REFERENCES: &[Reference] = &[
    // seL4: Call + ReplyRecv on the fast path (245 + 269).
    sel4("ipc_call_reply_roundtrip", 514.0),
    // seL4: fault round trip 1,220 plus one `Page_Map` 388 (three kernel entries).
    sel4("fault_reply_map_roundtrip", 1_608.0),
    // seL4 maps one page per call.
    sel4("map_unmap_range_4k_pages_per_page", 388.0),
    // Linux: the null system call (`getppid`) round trip.
    linux("null_ipc_to_vm", 470.0),
    linux("anon_fault_per_page", 3_165.0),
    linux("cow_fault_per_page", 4_260.0),
    linux("fork_16mib", 723_312.0),
    linux("fork_64mib", 2_736_272.0),
    // Linux with its 64 KiB fault-around, as ours maps a block at a time.
    linux("file_fault_per_page", 759.0),
    linux("shm_first_touch_per_page", 5_334.0),
    linux("fileio_read_per_mib", 2_010_000.0),
    linux("fileio_read4k_per_mib", 720_000.0),
    linux("fileio_fgets_per_mib", 1_720_000.0),
    linux("fileio_write_per_mib", 3_420_000.0),
    linux("fileio_write4k_per_mib", 1_570_000.0),
    linux("fileio_mmap_write_per_mib", 2_040_000.0),
    // Linux: mmap and memcpy of every page.
    linux("fileio_mmap_per_mib", 490_000.0),
];

/// The reference figures of `name`, if any were measured.
pub fn reference(name: &str) -> Option<&'static Reference> {
    REFERENCES.iter().find(|r| r.name == name)
}

/// One row of the chart: a figure and its three values (ours, Linux, seL4).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub ours: f64,
    pub linux: Option<f64>,
    pub sel4: Option<f64>,
}

/// The rows to draw: every instruction-count figure of the run, those with a reference
/// first (in the order of [`REFERENCES`]), then the rest by name.
pub fn rows(summaries: &[Summary]) -> Vec<Row> {
    let mut rows: Vec<(usize, Row)> = summaries
        .iter()
        .filter(|s| s.unit == "instructions" && s.value > 0.0 && s.value.is_finite())
        .map(|s| {
            let r = reference(&s.name);
            let order = REFERENCES
                .iter()
                .position(|x| x.name == s.name)
                .unwrap_or(REFERENCES.len());
            let row = Row {
                name: s.name.clone(),
                ours: s.value,
                linux: r.and_then(|r| r.linux),
                sel4: r.and_then(|r| r.sel4),
            };
            (order, row)
        })
        .collect();
    rows.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.name.cmp(&y.name)));
    rows.into_iter().map(|(_, row)| row).collect()
}

const OURS: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const LINUX: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const SEL4: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);

/// Height of one figure's row, in pixels.
const ROW_PX: u32 = 34;
const WIDTH_PX: u32 = 1100;
/// Room for the title, the axis and the legend.
const FRAME_PX: u32 = 150;

/// The chart of `rows` as an SVG document.
pub fn svg(rows: &[Row]) -> Result<String, String> {
    let mut out = String::new();
    let height = FRAME_PX + ROW_PX * rows.len().max(1) as u32;
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH_PX, height)).into_drawing_area();
        draw(&root, rows).map_err(|e| format!("drawing the chart: {e}"))?;
        root.present()
            .map_err(|e| format!("writing the chart: {e}"))?;
    }
    Ok(out)
}

/// A series of bars: its legend, its colour, and its value in a row (if any).
type Series = (&'static str, RGBColor, fn(&Row) -> Option<f64>);

type DrawResult<T> = Result<T, DrawingAreaErrorKind<std::io::Error>>;

fn draw(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    rows: &[Row],
) -> DrawResult<()> {
    root.fill(&WHITE)?;
    let n = rows.len().max(1);
    let top = rows
        .iter()
        .flat_map(|r| [Some(r.ours), r.linux, r.sel4])
        .flatten()
        .fold(10.0f64, f64::max);
    let x_max = 10f64.powf(top.log10().ceil() + 0.3);
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Guest instructions per operation (make bench, QEMU -icount; log scale)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(330)
        .build_cartesian_2d((10f64..x_max).log_scale(), 0f64..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| {
            // A label at the middle of each row: y = i + 0.5.
            let i = (y - 0.5).round();
            if (y - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < rows.len() {
                rows[rows.len() - 1 - i as usize].name.clone()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|x| short(*x))
        .x_desc("instructions")
        .draw()?;

    let bars: [Series; 3] = [
        ("this system", OURS, |r| Some(r.ours)),
        ("Linux 6.1", LINUX, |r| r.linux),
        ("seL4", SEL4, |r| r.sel4),
    ];
    for (k, &(label, color, value)) in bars.iter().enumerate() {
        let rects: Vec<Rectangle<(f64, f64)>> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, row)| {
                let v = value(row)?;
                // Row i from the top; three thin bars inside it.
                let base = (rows.len() - 1 - i) as f64;
                let y0 = base + 0.8 - 0.25 * (k as f64 + 1.0);
                Some(Rectangle::new(
                    [(10.0, y0), (v.max(10.0), y0 + 0.22)],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(rects)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// An axis value as a reader would write it: 100, 10 K, 1 M.
fn short(x: f64) -> String {
    let x = x.round();
    if x >= 1e6 {
        format!("{} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{} K", x / 1e3)
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Extra;

    fn summary(name: &str, unit: &str, value: f64) -> Summary {
        Summary {
            name: name.into(),
            unit: unit.into(),
            value,
            runs: vec![value],
            extra: Vec::<(String, Extra)>::new(),
        }
    }

    #[test]
    fn rows_keep_instruction_figures_with_references_first() {
        let rows = rows(&[
            summary("zzz_new_figure", "instructions", 7.0),
            summary("anon_fault_latency_p99_alone", "ticks", 85.0),
            summary("anon_fault_per_page", "instructions", 1_363.0),
            summary("ipc_call_reply_roundtrip", "instructions", 444.0),
        ]);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ipc_call_reply_roundtrip",
                "anon_fault_per_page",
                "zzz_new_figure"
            ]
        );
        assert_eq!(rows[0].sel4, Some(514.0));
        assert_eq!(rows[0].linux, None);
        assert_eq!(rows[1].linux, Some(3_165.0));
        assert_eq!(rows[2].linux, None);
        assert_eq!(rows[2].sel4, None);
    }

    #[test]
    fn svg_has_a_bar_per_value_and_a_label_per_figure() {
        let rows = rows(&[
            summary("ipc_call_reply_roundtrip", "instructions", 444.0),
            summary("fileio_read_per_mib", "instructions", 795_066.0),
        ]);
        let svg = svg(&rows).expect("chart");
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        for name in [
            "ipc_call_reply_roundtrip",
            "fileio_read_per_mib",
            "Linux 6.1",
            "seL4",
        ] {
            assert!(svg.contains(name), "no {name} in the chart");
        }
        // Two of ours, one Linux, one seL4, and three legend swatches.
        let fill = |c: RGBColor| format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
        assert_eq!(svg.matches(&fill(OURS)).count(), 2 + 1);
        assert_eq!(svg.matches(&fill(LINUX)).count(), 1 + 1);
        assert_eq!(svg.matches(&fill(SEL4)).count(), 1 + 1);
    }

    #[test]
    fn axis_values_read_short() {
        assert_eq!(short(10.0), "10");
        assert_eq!(short(1000.0), "1 K");
        assert_eq!(short(250_000.0), "250 K");
        assert_eq!(short(10_000_000.0), "10 M");
    }

    #[test]
    fn every_reference_names_a_figure_once() {
        for (i, r) in REFERENCES.iter().enumerate() {
            assert!(
                r.linux.is_some() || r.sel4.is_some(),
                "{} has no value",
                r.name
            );
            assert!(
                REFERENCES[i + 1..].iter().all(|x| x.name != r.name),
                "{} twice",
                r.name
            );
        }
    }
}
