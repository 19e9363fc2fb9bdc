//! Property tests: a `ByteView` behaves exactly like the `Vec<u8>` it was made from.

use geecache_byteview::ByteView;
use proptest::prelude::*;

proptest! {
    #[test]
    fn view_matches_its_source(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let view = ByteView::from(data.clone());
        prop_assert_eq!(view.len(), data.len());
        prop_assert_eq!(view.is_empty(), data.is_empty());
        prop_assert_eq!(view.as_slice(), &data[..]);
        prop_assert_eq!(view.to_vec(), data.clone());
        prop_assert_eq!(view.to_string(), String::from_utf8_lossy(&data).into_owned());
        let clone = view.clone();
        prop_assert!(clone.shares_storage_with(&view));
        prop_assert_eq!(clone, view);
    }

    #[test]
    fn ordering_matches_slices(a in proptest::collection::vec(any::<u8>(), 0..16),
                               b in proptest::collection::vec(any::<u8>(), 0..16)) {
        let (va, vb) = (ByteView::from(a.clone()), ByteView::from(b.clone()));
        prop_assert_eq!(va.cmp(&vb), a.cmp(&b));
        prop_assert_eq!(va == vb, a == b);
    }

    #[test]
    fn copy_from_slice_is_equal_but_separate(data in proptest::collection::vec(any::<u8>(), 1..64)) {
        let view = ByteView::copy_from_slice(&data);
        prop_assert_eq!(view.as_slice(), &data[..]);
        prop_assert_ne!(view.as_slice().as_ptr(), data.as_ptr());
    }
}
