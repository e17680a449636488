//! The machinery behind [`crate::msg`]'s single declaration of messages and
//! fields, in the spirit of Kannel's `msg-decl.h` X-macros: the list of
//! fields is written once, and this macro turns it into the structs, their
//! decoder, encoder, `Default`, `Debug`, field walker, and the [`Msg`] enum
//! that ties the five kinds together. Adding a field is one line in `msg.rs`.
//!
//! [`Msg`]: crate::Msg

macro_rules! box_messages {
    (
        $(
            $(#[$smeta:meta])*
            $variant:ident($name:ident) = $code:literal, $label:literal {
                $(
                    $(#[$fmeta:meta])*
                    $field:ident : $ty:ty,
                )*
            }
        )*
    ) => {
        $(
            $(#[$smeta])*
            #[derive(Clone, PartialEq, Eq)]
            pub struct $name {
                $( $(#[$fmeta])* pub $field: $ty, )*
                /// Bytes after the last field Kannel 1.4.5 knows. A newer
                /// Kannel may append fields; they are kept here and written
                /// back unchanged. Empty for every frame Kannel 1.4.5 sends.
                pub extra: Bytes,
            }

            impl $name {
                /// The message type on the wire.
                pub const TYPE: i32 = $code;
                /// The wire fields, in wire order.
                pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

                /// Every wire field with its value, in wire order.
                pub fn fields(&self) -> Vec<(&'static str, FieldValue<'_>)> {
                    vec![$( (stringify!($field), Wire::value(&self.$field)) ),*]
                }

                /// Parses the fields after the message type. `input` lies
                /// in `frame`; on error, the failing field's name is given.
                fn parse_fields<'a>(
                    frame: &Bytes,
                    input: &'a [u8],
                ) -> Result<Self, (&'static str, WireError<'a>)> {
                    $(
                        let (input, $field) = <$ty as Wire>::parse(frame, input)
                            .map_err(|e| (stringify!($field), fatal(e)))?;
                    )*
                    Ok($name { $( $field, )* extra: frame.slice_ref(input) })
                }

                /// Length of the body: type, fields and extra bytes.
                fn body_len(&self) -> usize {
                    4 $( + Wire::wire_len(&self.$field) )* + self.extra.len()
                }

                /// Writes the body; the caller has reserved `body_len` bytes.
                fn put_body(&self, dst: &mut BytesMut) {
                    dst.put_i32($code);
                    $( Wire::put(&self.$field, dst); )*
                    dst.put_slice(&self.extra);
                }
            }

            /// Every field unset, as Kannel's `msg_create` leaves it: NULL
            /// strings, -1 integers (the UUID is nil, see [`Wire`]).
            impl Default for $name {
                fn default() -> Self {
                    $name { $( $field: <$ty as Wire>::unset(), )* extra: Bytes::new() }
                }
            }

            impl fmt::Debug for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    let mut d = f.debug_struct(stringify!($name));
                    $( d.field(stringify!($field), &self.$field); )*
                    if !self.extra.is_empty() {
                        d.field("extra", &self.extra);
                    }
                    d.finish()
                }
            }

            impl From<$name> for Msg {
                fn from(m: $name) -> Msg {
                    Msg::$variant(m)
                }
            }
        )*

        /// One box protocol message of any kind.
        // Nearly every frame on a box connection is an `sms`, so the enum is
        // sms-sized whatever we do; boxing it would add an allocation to the
        // common case to save space in the rare ones.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, PartialEq, Eq, Debug)]
        pub enum Msg {
            $( $(#[$smeta])* $variant($name), )*
        }

        impl Msg {
            /// The message type on the wire.
            pub fn type_code(&self) -> i32 {
                match self { $( Msg::$variant(_) => $code, )* }
            }

            /// Kannel's name for the message type (`sms`, `ack`, ...).
            pub fn type_name(&self) -> &'static str {
                match self { $( Msg::$variant(_) => $label, )* }
            }

            /// Every wire field with its value, in wire order.
            pub fn fields(&self) -> Vec<(&'static str, FieldValue<'_>)> {
                match self { $( Msg::$variant(m) => m.fields(), )* }
            }

            /// The bytes after the last known field (see `extra` on each
            /// message).
            pub fn extra(&self) -> &Bytes {
                match self { $( Msg::$variant(m) => &m.extra, )* }
            }

            fn parse_typed<'a>(
                code: i32,
                frame: &Bytes,
                input: &'a [u8],
            ) -> Option<Result<Msg, (&'static str, WireError<'a>)>> {
                match code {
                    $( $code => Some($name::parse_fields(frame, input).map(Msg::$variant)), )*
                    _ => None,
                }
            }

            fn body_len(&self) -> usize {
                match self { $( Msg::$variant(m) => m.body_len(), )* }
            }

            fn put_body(&self, dst: &mut BytesMut) {
                match self { $( Msg::$variant(m) => m.put_body(dst), )* }
            }
        }
    };
}

pub(crate) use box_messages;
