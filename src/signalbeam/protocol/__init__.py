"""Wire models shared by the server and the agent."""
