export { FormAlert, Notice, StatusMessage } from './alert';
export { Button, type ButtonProps } from './button';
export { Dialog } from './dialog';
export { CheckboxField, PasswordField, SelectField, TextField, type FieldError } from './field';
export { Loading } from './loading';
export { PageHeader } from './page-header';
export { PasswordLengthFeedback } from './password-length-feedback';
export { LoadMore } from './load-more';
export { TableScroll } from './table-scroll';
