use super::*;
use proptest::prelude::*;

fn at(s: &str) -> Expander {
    Expander::new(DateTime::parse_from_rfc3339(s).unwrap())
}

fn in_zone(utc: &str, zone: &str) -> Expander {
    Expander::in_zone(
        DateTime::parse_from_rfc3339(utc).unwrap().to_utc(),
        zone.parse().unwrap(),
    )
}

fn var(name: &str, value: &str, format: &str) -> VariableSpec {
    VariableSpec {
        name: name.into(),
        ty: VarType::Time,
        value: value.into(),
        format: format.into(),
    }
}

const ALL: &str = "$(year)|$(mon)|$(day)|$(hour)|$(min)|$(sec)|$(date)|$(now)";

#[test]
fn system_variables_at_fixed_batch_times() {
    // (batch time in UTC, zone, expected ALL)
    let cases = [
        // leap day, late evening in Shanghai
        (
            "2024-02-29T15:05:09Z",
            "Asia/Shanghai",
            "2024|02|29|23|05|09|2024-02-29|2024-02-29 23:05:09",
        ),
        // the same instant is already March 1st... no: 15:05 UTC + 8 = 23:05, still the 29th; one hour later it is March
        (
            "2024-02-29T16:00:00Z",
            "Asia/Shanghai",
            "2024|03|01|00|00|00|2024-03-01|2024-03-01 00:00:00",
        ),
        // year change: UTC is still the old year, Shanghai the new one
        (
            "2025-12-31T16:30:00Z",
            "Asia/Shanghai",
            "2026|01|01|00|30|00|2026-01-01|2026-01-01 00:30:00",
        ),
        (
            "2025-12-31T16:30:00Z",
            "UTC",
            "2025|12|31|16|30|00|2025-12-31|2025-12-31 16:30:00",
        ),
        // month end with a 30-day month
        (
            "2026-04-30T23:59:59Z",
            "UTC",
            "2026|04|30|23|59|59|2026-04-30|2026-04-30 23:59:59",
        ),
        // New York, DST in force (EDT, -04:00) and not (EST, -05:00)
        (
            "2026-07-01T12:00:00Z",
            "America/New_York",
            "2026|07|01|08|00|00|2026-07-01|2026-07-01 08:00:00",
        ),
        (
            "2026-12-01T12:00:00Z",
            "America/New_York",
            "2026|12|01|07|00|00|2026-12-01|2026-12-01 07:00:00",
        ),
        // a fixed offset
        (
            "2026-11-24T17:00:00Z",
            "+08:00",
            "2026|11|25|01|00|00|2026-11-25|2026-11-25 01:00:00",
        ),
    ];
    for (t, zone, want) in cases {
        assert_eq!(in_zone(t, zone).expand(ALL, "sql").unwrap(), want, "{t} in {zone}");
    }
}

#[test]
fn day_math_keeps_wall_clock_across_dst() {
    // 2026-03-08 is the US spring-forward day: 12:00 EDT minus 1d is 2026-03-07 12:00 EST,
    // 23 elapsed hours earlier, while minus 24h is 11:00 EST.
    let ex = in_zone("2026-03-08T16:00:00Z", "America/New_York")
        .with_variable(&var("y", "$(now)-1d", "yyyy-MM-dd HH:mm"))
        .unwrap()
        .with_variable(&var("h", "$(now)-24h", "yyyy-MM-dd HH:mm"))
        .unwrap();
    assert_eq!(ex.expand("$(now)", "x").unwrap(), "2026-03-08 12:00:00");
    assert_eq!(ex.value("y").unwrap(), "2026-03-07 12:00");
    assert_eq!(ex.value("h").unwrap(), "2026-03-07 11:00");
    // month end: minus one day from March 1st in a leap year
    let ex = in_zone("2024-03-01T02:00:00Z", "Asia/Shanghai")
        .with_variable(&var("y", "$(now)-1d", "yyyyMMdd"))
        .unwrap();
    assert_eq!(ex.value("y").unwrap(), "20240229");
}

#[test]
fn undefined_and_literal() {
    let ex = at("2024-01-01T00:00:00Z");
    let e = ex.expand("select $(nope)", "computation.code").unwrap_err();
    assert_eq!(e.code(), ErrorCode::UndefinedVariable);
    assert!(
        e.message().contains("computation.code") && e.message().contains("nope"),
        "{e}"
    );
    assert_eq!(ex.expand("a $$(year) b", "x").unwrap(), "a $(year) b");
    assert!(ex.expand("a $(year", "x").is_err());
    assert_eq!(
        ex.expand_counting("k/$(year)/", "x").unwrap(),
        ("k/2024/".to_string(), 1)
    );
    assert_eq!(
        ex.expand_counting("k/plain/", "x").unwrap(),
        ("k/plain/".to_string(), 0)
    );
}

#[test]
fn user_time_variable_and_params() {
    let ex = at("2024-03-02T01:00:00Z")
        .with_variable(&var("fiveDaysAgo", "$(now)-5d", "yyyyMMdd HH"))
        .unwrap()
        .with_param("p", "x");
    assert_eq!(ex.expand("$(fiveDaysAgo)|$(p)", "sql").unwrap(), "20240226 01|x");
    assert_eq!(
        parse_time_expr("$(now)-1d-2h+30m").unwrap(),
        TimeOffset { days: -1, minutes: -90 }
    );
    let huge = format!("$(now){}", "-100000d".repeat(1000));
    let long = format!("$(now){}", "-1d".repeat(100));
    for bad in [
        "now-1d",
        "$(now)-1w",
        "$(now)-d",
        "$(now)*2h",
        "$(now)-99999999999d",
        "$(now)-36501d",
        &huge,
        &long,
    ] {
        let e = parse_time_expr(bad).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidVariableValue, "{bad}");
    }
    let e = at("2024-03-02T01:00:00Z")
        .with_variable(&var("v", "$(now)", "yyyy-ww"))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidTimeFormat);
}

#[test]
fn fusion_hour_ranges() {
    let ex = in_zone("2017-07-01T00:00:00Z", "Asia/Shanghai")
        .with_variable(&var("fiveDaysAgo", "$(now)-5d", "yyyy-MM-dd HH:mm:ss"))
        .unwrap()
        .with_variable(&VariableSpec {
            name: "s".into(),
            ty: VarType::String,
            value: "x".into(),
            format: String::new(),
        })
        .unwrap();
    let (a, b) = ex.hour_range("2017-06-01 05:00 ~ 2017-07-01 05:00").unwrap();
    assert_eq!(a.to_rfc3339(), "2017-06-01T05:00:00+08:00");
    assert_eq!(b.to_rfc3339(), "2017-07-01T05:00:00+08:00");
    let (a, b) = ex.hour_range("$(fiveDaysAgo) ~ $(now)").unwrap();
    assert_eq!(a.to_rfc3339(), "2017-06-26T08:00:00+08:00");
    assert_eq!(b.to_rfc3339(), "2017-07-01T08:00:00+08:00");
    let (a, _) = ex.hour_range("$(date) 03:00 ~ $(now)").unwrap();
    assert_eq!(a.to_rfc3339(), "2017-07-01T03:00:00+08:00");
    for (filter, code) in [
        ("$(s) ~ $(now)", ErrorCode::FusionFilterStringVariable),
        ("$(nope) ~ $(now)", ErrorCode::FusionFilterUndefinedVariable),
        ("2017-06-01 05:00", ErrorCode::PathFilterError),
        ("2017-07-01 05:00 ~ 2017-06-01 05:00", ErrorCode::PathFilterError),
    ] {
        assert_eq!(ex.hour_range(filter).unwrap_err().code(), code, "{filter}");
    }
}

#[test]
fn zones_parse_or_say_what_is_accepted() {
    assert_eq!("Asia/Shanghai".parse::<Zone>().unwrap().to_string(), "Asia/Shanghai");
    assert_eq!("+08:00".parse::<Zone>().unwrap().to_string(), "+08:00");
    assert_eq!("local".parse::<Zone>().unwrap(), Zone::Local);
    let e = "Mars/Olympus".parse::<Zone>().unwrap_err();
    assert!(
        e.message().contains("Mars/Olympus") && e.message().contains("IANA"),
        "{e}"
    );
}

proptest! {
    /// Offsets add up: a sum of terms equals the offset of its parts.
    #[test]
    fn time_math_sums(terms in proptest::collection::vec((any::<bool>(), 0i64..500, 0usize..3), 0..6)) {
        let mut expr = "$(now)".to_string();
        let mut want = TimeOffset::default();
        for (neg, n, unit) in &terms {
            let sign = if *neg { -1 } else { 1 };
            let u = ["d", "h", "m"][*unit];
            expr.push_str(&format!("{}{n}{u}", if *neg { "-" } else { "+" }));
            match u {
                "d" => want.days += sign * n,
                "h" => want.minutes += sign * n * 60,
                _ => want.minutes += sign * n,
            }
        }
        prop_assert_eq!(parse_time_expr(&expr).unwrap(), want);
    }

    /// Formatting with the full pattern and parsing back gives the same second.
    #[test]
    fn format_round_trips(secs in 0i64..4_102_444_800, zone in prop::sample::select(vec!["UTC", "Asia/Shanghai", "America/New_York", "+05:30"])) {
        let z: Zone = zone.parse().unwrap();
        let t = DateTime::from_timestamp(secs, 0).unwrap();
        let local = z.local(t);
        let text = format_java(&local, "yyyy-MM-dd HH:mm:ss");
        let back = NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S").unwrap();
        prop_assert_eq!(back, local.naive_local());
        prop_assert_eq!(format_java(&local, "yyyyMMddHHmmss"), local.format("%Y%m%d%H%M%S").to_string());
    }

    /// Moving by n days and back returns to the same wall-clock time (outside DST gaps).
    #[test]
    fn day_shift_inverts(secs in 0i64..4_102_444_800, n in -400i64..400) {
        let z: Zone = "Asia/Shanghai".parse().unwrap();
        let t = DateTime::from_timestamp(secs, 0).unwrap();
        prop_assert_eq!(z.add_days(z.add_days(t, n), -n), t);
    }
}
