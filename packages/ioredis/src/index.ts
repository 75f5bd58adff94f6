/**
 * @since 0.2.0
 */
export {}
