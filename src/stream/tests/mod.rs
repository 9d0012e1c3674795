//! In-process tests of the stream directory's writer that need more than a
//! unit beside its code: [`publisher`] drives the publishing protocol with a
//! real capture's events.

mod publisher;
