"""What every domain uses: database, tenancy scope, i18n, storage, outbox, errors."""
