"""The field types shipped with CRBM beyond the kernel's own, as a built-in plugin."""
