"""courriel: SMTP, POP3 and IMAP from one program, on SQLite or PostgreSQL."""

__version__ = "0.1.0"
