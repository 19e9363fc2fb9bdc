//! Each feature makes its module reachable under the facade, and the modules fit together.

#[cfg(feature = "lru")]
#[test]
fn lru_is_reexported() {
    let mut cache = geecache::lru::Cache::<String, String>::new(8);
    cache.add("Tom".into(), "630".into());
    assert_eq!(cache.get("Tom").map(String::as_str), Some("630"));
}

#[cfg(feature = "byteview")]
#[test]
fn byteview_is_reexported() {
    let v = geecache::byteview::ByteView::from("630");
    assert_eq!(v.clone().len(), 3);
}

#[cfg(feature = "consistenthash")]
#[test]
fn consistenthash_is_reexported() {
    let mut ring = geecache::consistenthash::Ring::default();
    ring.add(["http://a:1", "http://b:1"]);
    assert!(
        ring.get("k")
            .is_some_and(|o| o == "http://a:1" || o == "http://b:1")
    );
}

#[cfg(feature = "singleflight")]
#[tokio::test]
async fn singleflight_is_reexported() {
    let group = geecache::singleflight::Group::<String, u32, std::io::Error>::new();
    let v = group
        .work("k".to_owned(), || async { Ok(7) })
        .await
        .unwrap();
    assert_eq!(v, 7);
}

/// A node built only from the facade: a group behind the HTTP router, asked over a socket.
#[cfg(feature = "http")]
#[tokio::test]
async fn a_node_can_be_built_from_the_facade_alone() {
    use geecache::group::{Group, LoadError, Loaded, Registry, getter_fn};
    use geecache::transport_http::{HttpPool, RouterConfig, router, serve};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = format!("http://{}", listener.local_addr().unwrap());
    let registry = Registry::new();
    let pool = HttpPool::builder(me.as_str()).build().unwrap();
    pool.set_peers([me.as_str()]).unwrap();
    Group::builder("scores")
        .register(&registry)
        .peers(pool.clone())
        .getter(getter_fn(|key: String| async move {
            match key.as_str() {
                "Tom" => Ok(Loaded::from("630")),
                _ => Err(LoadError::NotFound),
            }
        }))
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        router(RouterConfig::new(registry).pool(pool)),
        async { stopped.await.unwrap_or(()) },
    ));

    let mut socket = tokio::net::TcpStream::connect(me.trim_start_matches("http://"))
        .await
        .unwrap();
    socket
        .write_all(b"GET /api/scores/Tom HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n630"), "{answer}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// The cluster behaviour every transport must give, one test body run over each.
#[cfg(feature = "http")]
mod cluster;
