//! NetConnection / NetStream commands. STUB: to be implemented.
