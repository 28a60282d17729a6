use super::*;

#[test]
fn a_bpf_filters_program_id_is_found_among_its_options() {
    // What the kernel sent for a `bpf` filter: name, id 1503, tag, flags, gen flags.
    let options = [
        20, 0, 7, 0, 118, 105, 112, 100, 95, 116, 99, 95, 105, 110, 103, 114, 101, 115, 115, 0, 8,
        0, 11, 0, 223, 5, 0, 0, 12, 0, 10, 0, 27, 38, 39, 147, 206, 163, 86, 69, 8, 0, 8, 0, 1, 0,
        0, 0, 8, 0, 9, 0, 8, 0, 0, 0,
    ];
    assert_eq!(nested_u32(&options, TCA_BPF_ID), Some(1503));
    assert_eq!(nested_u32(&options, 99), None);
    assert_eq!(nested_u32(&options[..22], TCA_BPF_ID), None);
    assert_eq!(nested_u32(&[255, 255, 11, 0], TCA_BPF_ID), None);
}

#[test]
fn only_maps_of_the_declared_shape_are_adopted() {
    let stats = |max_entries| Layout {
        key: 4,
        value: 8,
        max_entries,
    };
    assert_eq!(layout_change("STATS", stats(20), Some(stats(20))), None);
    // An older vipd's counters, one reason short: the new programs would count past it.
    assert_eq!(
        layout_change("STATS", stats(19), Some(stats(20))).as_deref(),
        Some("STATS: key 4/value 8/entries 19 where the programs declare 4/8/20")
    );
    assert_eq!(
        layout_change("OLD", stats(1), None).as_deref(),
        Some("OLD: the programs no longer declare it")
    );
}
