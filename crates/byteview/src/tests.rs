use super::*;

#[test]
fn clone_shares_storage() {
    let view = ByteView::from(vec![7u8; 1 << 16]);
    let clone = view.clone();
    assert!(clone.shares_storage_with(&view));
    assert_eq!(clone.as_slice().as_ptr(), view.as_slice().as_ptr());
}

#[test]
fn to_vec_is_a_copy() {
    let view = ByteView::from("abc");
    let mut copy = view.to_vec();
    copy[0] = b'z';
    assert_eq!(view, "abc");
    assert_ne!(copy.as_ptr(), view.as_slice().as_ptr());
}

#[test]
fn to_bytes_shares_storage() {
    let view = ByteView::from(String::from("shared"));
    let bytes = view.to_bytes();
    assert_eq!(bytes.as_ptr(), view.as_slice().as_ptr());
}

#[test]
fn from_vec_keeps_allocation() {
    let data = vec![1u8, 2, 3, 4];
    let ptr = data.as_ptr();
    let view = ByteView::from(data);
    assert_eq!(view.as_slice().as_ptr(), ptr);
}

#[test]
fn display_is_lossy_utf8_and_debug_escapes() {
    let view = ByteView::from(vec![b'o', b'k', 0xff]);
    assert_eq!(view.to_string(), "ok\u{fffd}");
    assert_eq!(format!("{view:?}"), r#"ByteView(b"ok\xff")"#);
}

#[test]
fn equality_with_slices_and_strings() {
    let view = ByteView::from("tom");
    assert_eq!(view, "tom");
    assert_eq!("tom", view);
    assert_eq!(view, b"tom");
    assert_eq!(view, b"tom"[..]);
    assert_eq!(&b"tom"[..], view);
    assert_ne!(view, "tim");
    assert_eq!(view, String::from("tom"));
    assert_eq!(String::from("tom"), view);
    assert_eq!(view, b"tom".to_vec());
    assert_ne!(b"tim".to_vec(), view);
    assert_eq!(ByteView::new(), ByteView::default());
    assert!(ByteView::new().is_empty());
}
