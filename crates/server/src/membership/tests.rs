use std::sync::Mutex;

use super::*;

#[derive(Default)]
struct FakeSink {
    lists: Mutex<Vec<Vec<String>>>,
    refuse: bool,
}

impl PeerSink for FakeSink {
    fn set_peers(&self, peers: &[String]) -> Result<(), String> {
        if self.refuse {
            return Err("refused".into());
        }
        self.lists.lock().unwrap().push(peers.to_vec());
        Ok(())
    }

    fn peers(&self) -> Vec<String> {
        let mut all = vec!["http://self".to_owned()];
        all.extend(
            self.lists
                .lock()
                .unwrap()
                .last()
                .cloned()
                .unwrap_or_default(),
        );
        all
    }
}

#[tokio::test]
async fn static_membership_delivers_its_list_once_and_is_ready() {
    let sink = Arc::new(FakeSink::default());
    let counted = Arc::new(Mutex::new(Vec::new()));
    let c = Arc::clone(&counted);
    let running = Membership::Static(vec!["http://a:1".into(), "http://b:2".into()])
        .start(sink.clone(), move |n| c.lock().unwrap().push(n))
        .await
        .unwrap();
    assert!(running.peers_known());
    assert_eq!(
        *sink.lists.lock().unwrap(),
        vec![vec!["http://a:1".to_owned(), "http://b:2".to_owned()]]
    );
    assert_eq!(*counted.lock().unwrap(), vec![3]);
    running.shutdown().await;
}

#[tokio::test]
async fn a_refused_first_list_fails_the_start() {
    let sink = Arc::new(FakeSink {
        refuse: true,
        ..FakeSink::default()
    });
    let err = Membership::Static(vec!["x".into()])
        .start(sink, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err, "refused");
}
