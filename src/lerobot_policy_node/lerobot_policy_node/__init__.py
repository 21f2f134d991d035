"""Policy inference runtime with real-time chunking and the node publishing action chunks."""
