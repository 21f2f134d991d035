"""flow_chunk: our small flow-matching action-chunk policy with real-time-chunking guidance."""
