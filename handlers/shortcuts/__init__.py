"""Message and global shortcuts, one module each."""
