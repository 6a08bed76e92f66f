//! The sizes of what every connection holds (thousands of idle channels): printed by
//! `cargo test --release sizes -- --nocapture`, and bounded so that growth is a decision.

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use crate::runtime::connect::{ConnectRequest, Template};
    use crate::runtime::io::Sock;
    use crate::runtime::lifecycle::{Conn, Life};
    use crate::runtime::schedule::KeepAliveBook;
    use crate::runtime::stream::{Stream, TlsStream};
    use crate::state::{ChannelShared, WsShared};

    #[test]
    fn per_connection_sizes() {
        let sizes = [
            ("Conn (slab entry)", size_of::<Option<Conn>>(), 400),
            ("Life", size_of::<Life>(), 200),
            ("KeepAliveBook", size_of::<KeepAliveBook>(), 120),
            ("Template", size_of::<Template>(), 64),
            // +24 B for the keep-alive frame's unsent tail (written around the codec).
            ("Sock (boxed)", size_of::<Sock>(), 500),
            ("Stream", size_of::<Stream>(), 32),
            ("TlsStream (boxed)", size_of::<TlsStream>(), 1100),
            ("WsShared (Arc)", size_of::<WsShared>(), 560),
            ("ChannelShared (Arc)", size_of::<ChannelShared>(), 400),
            ("  Adaptive", size_of::<crate::state::channel::Adaptive>(), 400),
            ("  Tracker", size_of::<crate::protocol::adaptive::tracker::Tracker>(), 400),
            ("  websocket Options", size_of::<crate::state::websocket::Options>(), 400),
            ("  websocket Inner", size_of::<crate::state::websocket::Inner>(), 400),
            ("  Reframed", size_of::<crate::runtime::reframed::Reframed>(), 400),
            ("  Error", size_of::<crate::error::Error>(), 400),
            ("  Reframer", size_of::<crate::protocol::reframe::Reframer>(), 400),
            ("  rustls connection", size_of::<rustls::client::UnbufferedClientConnection>(), 1100),
            ("ConnectRequest (until connected)", size_of::<ConnectRequest>(), 480),
        ];
        for (what, size, bound) in sizes {
            println!("{what:36} {size:5} B (bound {bound})");
        }
        for (what, size, bound) in sizes {
            assert!(size <= bound, "{what} is {size} bytes, over its bound of {bound}");
        }
    }
}
